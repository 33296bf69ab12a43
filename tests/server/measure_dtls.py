"""Measure aiocoap's DTLS server transport inside the DM server (not a test; a script).

    .venv/bin/python -m tests.server.measure_dtls [--peers 300] [--concurrency 20]

Starts the server in this process (SQLite in a temp folder, DTLS on loopback), provisions
``--peers`` PSK terminals, then a separate process registers each one over a fresh DTLS
session (handshake + Register), ``--concurrency`` at a time. Prints JSON: handshakes/s
(handshake + Register + database write), server resident memory before and after holding
every session, and what a wrong key and an unknown identity do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

KEY = b"measure-key-0123"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _register_all(port: int, peers: int, concurrency: int, plain: bool) -> dict[str, Any]:
    import aiocoap

    uri = f"{'coap' if plain else 'coaps'}://127.0.0.1:{port}"
    transports = ["udp6"] if plain else ["tinydtls"]
    semaphore = asyncio.Semaphore(concurrency)
    contexts = []
    failures = first_failures = 0

    async def attempt(index: int) -> bool:
        context = await aiocoap.Context.create_client_context(transports=transports)
        contexts.append(context)
        context.client_credentials.load_from_dict(
            {f"{uri}/*": {"dtls": {"psk": KEY, "client-identity": f"id-{index}".encode()}}}
        )
        message = aiocoap.Message(
            code=aiocoap.POST,
            uri=f"{uri}/rd?ep=m-{index}&lt=300&lwm2m=1.1",
            payload=b"</3/0>",
            content_format=40,
        )
        try:
            answer = await asyncio.wait_for(context.request(message).response, 15)
        except Exception:
            return False
        return bool(answer.code == aiocoap.CREATED)

    async def one(index: int) -> None:
        # Like a terminal's agent: a failed registration is tried once more.
        nonlocal failures, first_failures
        async with semaphore:
            if await attempt(index):
                return
            first_failures += 1
            if not await attempt(index):
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(peers)))
    elapsed = time.perf_counter() - started

    async def probe(identity: bytes, key: bytes) -> str:
        context = await aiocoap.Context.create_client_context(transports=["tinydtls"])
        context.client_credentials.load_from_dict(
            {f"{uri}/*": {"dtls": {"psk": key, "client-identity": identity}}}
        )
        message = aiocoap.Message(
            code=aiocoap.POST, uri=f"{uri}/rd?ep=m-0&lt=300", payload=b"</3/0>", content_format=40
        )
        t0 = time.perf_counter()
        try:
            answer = await asyncio.wait_for(context.request(message).response, 10)
            outcome = f"answered {answer.code}"
        except Exception as exc:
            outcome = f"{type(exc).__name__}"
        finally:
            await context.shutdown()
        return f"{outcome} after {time.perf_counter() - t0:.2f} s"

    if plain:
        wrong_key = unknown = "n/a (plain CoAP)"
    else:
        wrong_key = await probe(b"id-0", b"wrong-key-000000")
        unknown = await probe(b"nobody", KEY)
    for context in contexts:
        await context.shutdown()
    return {
        "transport": "coap" if plain else "coaps",
        "peers": peers,
        "concurrency": concurrency,
        "failed_first_attempt": first_failures,
        "failures": failures,  # after one more attempt
        "seconds": round(elapsed, 2),
        "handshakes_per_s": round(peers / elapsed, 1),
        "wrong_key": wrong_key,
        "unknown_identity": unknown,
    }


def _client(port: int, peers: int, concurrency: int, plain: bool, out: Any) -> None:
    out.put(asyncio.run(_register_all(port, peers, concurrency, plain)))


async def main(peers: int, concurrency: int, plain: bool = False) -> dict[str, Any]:
    from dm_server.db.models import Account
    from dm_server.db.models.terminal import SecurityMode
    from dm_server.server import start_server
    from dm_server.services import terminals
    from dm_server.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="posfleet-dtls-"))
    settings = Settings(
        bind="127.0.0.1",
        coap_port=0,
        coaps_port=0,
        http_port=0,
        data_dir=folder,
        admin_password="measure-admin",
        log_level="WARNING",
        rate_limit_per_s=1e6,
        rate_limit_burst=1_000_000,
    )
    server = await start_server(settings, extensions=[])
    try:
        async with server.db.session() as session:
            from sqlalchemy import select

            admin = await session.scalar(select(Account))
            assert admin is not None
            created = await terminals.provision(
                session,
                admin,
                [
                    terminals.ProvisionRequest(f"m-{i}", psk_identity=f"id-{i}", psk_key=KEY)
                    if not plain
                    else terminals.ProvisionRequest(f"m-{i}", SecurityMode.NOSEC)
                    for i in range(peers)
                ],
            )
        server.lwm2m.credentials_changed(created)
        before = rss_mb()
        queue: Any = multiprocessing.get_context("spawn").Queue()
        client = multiprocessing.get_context("spawn").Process(
            target=_client,
            args=(
                server.coap_port if plain else server.coaps_port,
                peers,
                concurrency,
                plain,
                queue,
            ),
        )
        client.start()
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, queue.get)
        await loop.run_in_executor(None, client.join)
        pool = server.lwm2m.requester.contexts["coaps"].request_interfaces[0]
        sessions = len(pool.token_interface.message_interface._pool._connections)
        result |= {
            "server_rss_mb_before": round(before, 1),
            "server_rss_mb_after": round(rss_mb(), 1),
            "dtls_sessions_held_by_server": sessions,
        }
        return result
    finally:
        await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--plain", action="store_true", help="plain CoAP, for comparison")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.peers, args.concurrency, args.plain)), indent=2))
