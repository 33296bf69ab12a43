"""How many simulated terminals one ``posfleet simulate`` process sustains.

``python -m bench.simulator --sizes 100,300,1000 --duration 60``

For each fleet size: a fresh DM server (pinned to core 0, development auto-accept), then
``posfleet simulate --nosec`` with that many terminals (pinned to core 1), trading at
``--speed``. The simulator prints its statistics as JSON lines; this harness adds its CPU
share of one core and its resident memory from /proc, and asks the server's REST API how
many terminals it sees registered. Printed as one JSON document. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.targets import (
    ADMIN_USER,
    GENERATOR_CORE,
    DmServerTarget,
    EchoTarget,
    Target,
    cpu_seconds,
    resident_kib,
)

REPORT_EVERY_S = 5.0
STOP_GRACE_S = 60.0
#: A saturated server may not answer its REST API in time; that is recorded, not fatal.
API_TIMEOUT_S = 10.0


def simulator_command(server_port: int, terminals: int, data_dir: Path, args: argparse.Namespace):
    argv = [
        sys.executable, "-m", "posfleet.cli", "simulate",
        "--server", f"coap://127.0.0.1:{server_port}",
        "--terminals", str(terminals),
        "--nosec",
        "--data-dir", str(data_dir),
        "--duration", str(args.duration),
        "--report", str(REPORT_EVERY_S),
        "--speed", str(args.speed),
        "--seed", "1",
    ]  # fmt: skip
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        argv = ["taskset", "-c", str(GENERATOR_CORE), *argv]
    return argv


async def fleet_state(target: DmServerTarget) -> dict[str, object]:
    """Running / Idle / Offline counts from the REST API, or why it did not answer."""
    try:
        return await _fleet_state(target)
    except httpx.HTTPError as error:
        return {"error": f"{type(error).__name__}: the REST API did not answer in time"}


async def _fleet_state(target: DmServerTarget) -> dict[str, object]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{target.http_port}/api/v1", timeout=API_TIMEOUT_S
    ) as client:
        token = await client.post(
            "/auth/token", data={"username": ADMIN_USER, "password": target.admin_password}
        )
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        answer = await client.get("/fleet/state")
        answer.raise_for_status()
        return dict(answer.json())


def run_size(terminals: int, args: argparse.Namespace) -> dict[str, object]:
    # The simulator's terminals are made up: the server creates each at its first Register.
    target: Target = EchoTarget() if args.sink == "echo" else DmServerTarget(auto_accept=True)
    target.start()
    data_dir = Path(tempfile.mkdtemp(prefix="posfleet-bench-sim-"))
    try:
        process = subprocess.Popen(
            simulator_command(target.coap_port, terminals, data_dir, args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        reports: list[dict[str, object]] = []
        other: list[str] = []
        cpu_at_start = wall_at_start = None
        # A simulator that cannot even finish starting its fleet prints nothing: the
        # watchdog stops it, so an overloaded size ends the run for that size only.
        budget = args.duration + STOP_GRACE_S + terminals / 20
        watchdog = threading.Timer(budget, process.terminate)
        watchdog.start()
        for line in process.stdout:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                other.append(line.rstrip())
                continue
            if "started_in_s" in record:
                cpu_at_start, wall_at_start = cpu_seconds(process.pid), time.monotonic()
                record["rss_mib"] = round(resident_kib(process.pid) / 1024, 1)
            elif process.poll() is None:
                record["rss_mib"] = round(resident_kib(process.pid) / 1024, 1)
                # Asked while the fleet runs: at its end the simulator de-registers.
                if isinstance(target, DmServerTarget):
                    record["server_fleet_state"] = asyncio.run(fleet_state(target))
                if cpu_at_start is not None and wall_at_start is not None:
                    record["cpu_share_since_start"] = round(
                        (cpu_seconds(process.pid) - cpu_at_start)
                        / (time.monotonic() - wall_at_start),
                        3,
                    )
            reports.append(record)
        watchdog.cancel()
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        trading = [r for r in reports if "t_s" in r]
        last = trading[-2] if len(trading) >= 2 else (trading[-1] if trading else {})
        return {
            "terminals": terminals,
            "started_in_s": next((r["started_in_s"] for r in reports if "started_in_s" in r), None),
            "registered_at_end": last.get("registered"),
            "server_fleet_state": last.get("server_fleet_state"),
            "events_sent": last.get("events_sent"),
            "events_pending": last.get("pending"),
            "loop_lag_max_ms": max(
                (float(r.get("loop_lag_max_ms", 0)) for r in trading), default=None
            ),
            "simulator_cpu_share_of_one_core": last.get("cpu_share_since_start"),
            "simulator_rss_mib": last.get("rss_mib"),
            "server_cpu_s": round(cpu_seconds(target.pid), 1),
            "reports": trading,
            "other_output": other[-20:],
        }
    finally:
        target.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000", help="fleet sizes, comma-separated")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per size")
    parser.add_argument("--speed", type=float, default=60.0, help="trading time compression")
    parser.add_argument(
        "--sink",
        choices=("dm", "echo"),
        default="dm",
        help="dm: the DM server; echo: bench/echo_server.py, which acknowledges Register, "
        "Update, De-register and Send at almost no cost, to measure the simulator alone",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    results = []
    for size in args.sizes.split(","):
        results.append(run_size(int(size), args))
        summary = {k: v for k, v in results[-1].items() if k not in ("reports", "other_output")}
        print(json.dumps(summary), file=sys.stderr, flush=True)
        text = json.dumps(
            {"sink": args.sink, "duration_s": args.duration, "speed": args.speed, "runs": results},
            indent=2,
        )
        if args.output:  # after every size, so an interrupted run keeps what it measured
            args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
