"""The processes under test: the aiocoap echo ceiling and the PosFleet DM server.

Each runs in its own process, pinned to one core when the machine has two or more, so the
load generator (this process, on another core) never competes with it for CPU.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER_CORE = 0
GENERATOR_CORE = 1
START_TIMEOUT_S = 60.0
ADMIN_USER = "bench"
#: Terminals per CSV import when provisioning the fleet.
PROVISION_CHUNK = 2000


def free_port(kind: int) -> int:
    """A loopback port of ``kind`` (SOCK_DGRAM / SOCK_STREAM) that was free a moment ago."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin_command(argv: list[str]) -> list[str]:
    """Prefix ``argv`` with taskset so the server under test owns one core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(SERVER_CORE), *argv]
    return argv


def pin_generator() -> bool:
    """Keep the load generator off the server's core; False if there is only one core."""
    if (os.cpu_count() or 1) < 2:
        return False
    os.sched_setaffinity(0, {GENERATOR_CORE})
    return True


def resident_kib(pid: int) -> int:
    """VmRSS of a process in KiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class Target:
    """A server process started for the benchmark and stopped after it."""

    name = "target"
    #: Whether it observes each terminal after its Register (the bench then waits for it).
    observes_after_register = False

    def __init__(self) -> None:
        self.coap_port = free_port(socket.SOCK_DGRAM)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix=f"posfleet-bench-{self.name}-")[1])

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                pin_command(self.command()),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
            )
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check_alive()
            if self.is_ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start in {START_TIMEOUT_S} s; see {self.log_path}")

    def is_ready(self) -> bool:
        return "READY" in self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{log}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(FileNotFoundError):
            self.log_path.unlink()


class EchoTarget(Target):
    """The ceiling: ``bench/echo_server.py``."""

    name = "echo"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.echo_server", "--port", str(self.coap_port)]

    def environment(self) -> dict[str, str]:
        # aiocoap binds with SO_REUSEPORT by default: another process binding the same port
        # would then share our datagrams. The DM server turns it off for itself; so do we.
        return {**os.environ, "AIOCOAP_REUSE_PORT": "0"}


class DmServerTarget(Target):
    """``posfleet server`` on loopback with a fresh SQLite database in a temporary folder.

    The simulated terminals are provisioned NoSec through the REST API before they
    register, as in production; with ``auto_accept`` the server instead runs with the
    development switch and creates each terminal at its first Register. The per-address
    flood limit is lifted: every simulated terminal shares the address 127.0.0.1.
    """

    name = "dm_server"
    observes_after_register = True

    def __init__(self, database_url: str = "", auto_accept: bool = False) -> None:
        super().__init__()
        self.auto_accept = auto_accept
        self.http_port = free_port(socket.SOCK_STREAM)
        self.data_dir = Path(tempfile.mkdtemp(prefix="posfleet-bench-data-"))
        self.database_url = database_url
        self.admin_password = secrets.token_urlsafe(12)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "posfleet.cli", "server"]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            POSFLEET_BIND="127.0.0.1",
            POSFLEET_COAP_PORT=str(self.coap_port),
            POSFLEET_COAPS_PORT="-1",
            POSFLEET_HTTP_PORT=str(self.http_port),
            POSFLEET_DATA_DIR=str(self.data_dir),
            POSFLEET_DEV_AUTO_ACCEPT="1" if self.auto_accept else "0",
            POSFLEET_ADMIN_USER=ADMIN_USER,
            POSFLEET_ADMIN_PASSWORD=self.admin_password,
            POSFLEET_RATE_LIMIT_PER_S="1000000",
            POSFLEET_RATE_LIMIT_BURST="1000000",
            POSFLEET_LOG_LEVEL="WARNING",
        )
        if self.database_url:
            env["POSFLEET_DATABASE_URL"] = self.database_url
        return env

    async def provision(self, endpoints: list[str]) -> None:
        """Provision ``endpoints`` as NoSec terminals (CSV import, a few thousand a time)."""
        import httpx

        if self.auto_accept:
            return
        base = f"http://127.0.0.1:{self.http_port}/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=300) as client:
            token = await client.post(
                "/auth/token", data={"username": ADMIN_USER, "password": self.admin_password}
            )
            token.raise_for_status()
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            for start in range(0, len(endpoints), PROVISION_CHUNK):
                rows = "".join(f"{ep},nosec\n" for ep in endpoints[start : start + PROVISION_CHUNK])
                answer = await client.post(
                    "/terminals/import", content="endpoint,security_mode\n" + rows
                )
                if answer.status_code != 201:
                    raise RuntimeError(f"provisioning failed: {answer.status_code} {answer.text}")

    def is_ready(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.http_port)) == 0

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
