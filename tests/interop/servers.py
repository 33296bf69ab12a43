"""Our own programs as the third-party peers see them: separate processes on loopback.

The DM server runs as ``python -m posfleet.cli server`` (a real process, configured only
through ``POSFLEET_*`` variables, like an operator would), with a fresh SQLite database,
plain CoAP on a free port, DTLS off and the development switch that auto-accepts unknown
endpoints, so made-up third-party clients may register over NoSec.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.interop.peers import PeerError, free_udp_port

SERVER_START_TIMEOUT = 45.0
ADMIN_USER = "interop"
API_PREFIX = "/api/v1"
#: Bound on one REST call, above the server's own bound on one DM request.
REST_TIMEOUT = 30.0


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A running ``posfleet server`` and how to reach it."""

    process: subprocess.Popen[bytes]
    log_path: Path
    coap_port: int
    http_port: int
    admin_password: str
    host: str = "127.0.0.1"
    _token: str | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.http_port}{API_PREFIX}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self) -> httpx.AsyncClient:
        """An authenticated REST client (admin account) for one test."""
        if self._token is None:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                data={"username": ADMIN_USER, "password": self.admin_password},
                timeout=REST_TIMEOUT,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=REST_TIMEOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(data_dir: Path) -> ServerProcess:
    """Start the DM server in its own process and wait until its HTTP API answers."""
    coap_port, http_port = free_udp_port(), free_tcp_port()
    password = secrets.token_urlsafe(16)
    env = {
        **os.environ,
        "POSFLEET_BIND": "127.0.0.1",
        "POSFLEET_COAP_PORT": str(coap_port),
        "POSFLEET_COAPS_PORT": "-1",
        "POSFLEET_HTTP_PORT": str(http_port),
        "POSFLEET_DATA_DIR": str(data_dir),
        "POSFLEET_DATABASE_URL": "",
        "POSFLEET_DEV_AUTO_ACCEPT": "1",
        "POSFLEET_ADMIN_USER": ADMIN_USER,
        "POSFLEET_ADMIN_PASSWORD": password,
        "POSFLEET_REQUEST_TIMEOUT_S": "5",
        "POSFLEET_LOG_LEVEL": "INFO",
    }
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "posfleet.cli", "server"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = ServerProcess(process, log_path, coap_port, http_port, password)
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PeerError(f"posfleet server exited with {process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{http_port}/docs", timeout=1).status_code == 200:
                return server
        time.sleep(0.3)
    server.stop()
    raise PeerError(f"posfleet server did not answer in {SERVER_START_TIMEOUT} s:\n{server.log()}")
