"""The ceiling: a plain aiocoap server that answers every request with its own payload.

It does what any aiocoap server must do for a request (parse, deduplicate, route, answer)
and nothing an LwM2M server adds (registry, database, codecs), so the DM server's figures
divided by this one's say what our own code costs. Run as a separate, pinned process by
``bench/run.py``; prints ``READY`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio

import aiocoap
import aiocoap.resource as resource


class Echo(resource.Resource):
    """Answers GET with 2.05, POST/PUT with 2.04 (2.01 on /rd) echoing the payload, and
    DELETE with 2.02."""

    def __init__(self, created_path: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self._created_path = created_path

    async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.CONTENT, payload=request.payload)

    async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
        if self._created_path is not None:
            return aiocoap.Message(
                code=aiocoap.CREATED, payload=request.payload, location_path=self._created_path
            )
        return aiocoap.Message(code=aiocoap.CHANGED, payload=request.payload)

    render_put = render_post

    async def render_delete(self, request: aiocoap.Message) -> aiocoap.Message:
        return aiocoap.Message(code=aiocoap.DELETED)


async def serve(host: str, port: int) -> None:
    site = resource.Site()
    site.add_resource(("rd",), Echo(created_path=("rd", "echo")))
    # Where every Register points: Update (POST) and De-register (DELETE) succeed, so the
    # simulator can run against this as a sink that costs next to nothing.
    site.add_resource(("rd", "echo"), Echo())
    site.add_resource(("dp",), Echo())
    site.add_resource(("echo",), Echo())
    await aiocoap.Context.create_server_context(site, bind=(host, port), transports=["udp6"])
    print("READY", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
