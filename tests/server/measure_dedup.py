"""Measure aiocoap's deduplication cache in the DM server (a script, not a test).

    .venv/bin/python -m tests.server.measure_dedup [--requests 20000] [--lifetime 60]

Sends confirmable requests (Updates of an unknown registration: answered 4.04 without
touching the database) from 50 client sockets in a separate process, then reports how
many messages the server's message layer holds, its resident memory, and both again
after the configured EXCHANGE_LIFETIME has passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.server.measure_dtls import rss_mb

CLIENTS = 50


async def _load(port: int, requests: int) -> float:
    import aiocoap

    contexts = [await aiocoap.Context.create_client_context() for _ in range(CLIENTS)]

    async def worker(context: Any, count: int) -> None:
        for _ in range(count):
            message = aiocoap.Message(code=aiocoap.POST, uri=f"coap://127.0.0.1:{port}/rd/none")
            await context.request(message).response

    started = time.perf_counter()
    await asyncio.gather(*(worker(c, requests // CLIENTS) for c in contexts))
    elapsed = time.perf_counter() - started
    for context in contexts:
        await context.shutdown()
    return requests / elapsed


def _client(port: int, requests: int, out: Any) -> None:
    out.put(asyncio.run(_load(port, requests)))


async def main(requests: int, lifetime: float) -> dict[str, Any]:
    from dm_server.server import start_server
    from dm_server.settings import Settings

    settings = Settings(
        bind="127.0.0.1",
        coap_port=0,
        coaps_port=-1,
        http_port=0,
        data_dir=Path(tempfile.mkdtemp(prefix="posfleet-dedup-")),
        admin_password="measure-admin",
        log_level="WARNING",
        rate_limit_per_s=1e6,
        rate_limit_burst=1_000_000,
        exchange_lifetime_s=lifetime,
    )
    server = await start_server(settings, extensions=[])
    manager = server.lwm2m.requester.contexts["coap"].request_interfaces[0].token_interface
    try:
        before = rss_mb()
        spawn = multiprocessing.get_context("spawn")
        queue: Any = spawn.Queue()
        client = spawn.Process(target=_client, args=(server.coap_port, requests, queue))
        client.start()
        loop = asyncio.get_running_loop()
        rate = await loop.run_in_executor(None, queue.get)
        await loop.run_in_executor(None, client.join)
        held, loaded = len(manager._recent_messages), rss_mb()
        from aiocoap.numbers.constants import TransportTuning

        effective = TransportTuning().EXCHANGE_LIFETIME
        await asyncio.sleep(effective + 2)
        return {
            "requests": requests,
            "requests_per_s": round(rate, 1),
            "exchange_lifetime_s": effective,
            "held_after_load": held,
            "rss_mb_before": round(before, 1),
            "rss_mb_after_load": round(loaded, 1),
            "kb_per_held_message": round((loaded - before) * 1024 / max(held, 1), 2),
            "held_after_lifetime": len(manager._recent_messages),
            "rss_mb_after_lifetime": round(rss_mb(), 1),
        }
    finally:
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.lifetime)), indent=2))
