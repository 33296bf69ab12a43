"""Drivers for the third-party LwM2M peers the interoperability tests talk to.

The peers are command-line programs (lwm2m-node-lib's interactive client and server,
libcoap's ``coap-client-*``); they are driven through stdin/stdout with a bounded wait on
every step, so a peer that hangs fails the test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

INTEROP_DIR = Path(__file__).resolve().parent
NODE_MODULES = INTEROP_DIR / "node_modules"
NODE_LIB_VERSION = "1.4.0"
NODE_LIB_DIR = NODE_MODULES / "lwm2m-node-lib"
#: Preloaded into the node tools: sets their server port and log level from the environment.
PORT_OVERRIDE = INTEROP_DIR / "port_override.js"

#: Every wait on a peer is bounded by this many seconds unless a step says otherwise.
STEP_TIMEOUT = 10.0
NPM_CI_TIMEOUT = 300.0


class PeerError(AssertionError):
    """A peer did not print what the test waited for, or stopped; carries its output."""


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port that was free a moment ago, for peers that cannot bind port 0 themselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def node_lib_installed() -> bool:
    """Whether tests/interop/node_modules holds the pinned lwm2m-node-lib."""
    manifest = NODE_LIB_DIR / "package.json"
    return manifest.exists() and f'"version": "{NODE_LIB_VERSION}"' in manifest.read_text()


def install_node_lib() -> str | None:
    """Install the pinned npm packages with ``npm ci``; return why not, or None on success."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        return "node/npm are not installed (apt-get install nodejs npm; CI's .ci/run does)"
    if node_lib_installed():
        return None
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=INTEROP_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT,
        check=False,
    )
    if result.returncode != 0 or not node_lib_installed():
        raise PeerError(f"npm ci failed in {INTEROP_DIR}:\n{result.stdout}\n{result.stderr}")
    return None


class InteractivePeer:
    """A command-line program fed commands on stdin whose stdout is matched by regex.

    Output is accumulated; each ``expect`` searches only what came after the previous match,
    so consecutive steps never match the same text twice.
    """

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self._process = process
        self._output = ""
        self._cursor = 0
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> InteractivePeer:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        return cls(name, process)

    async def _read(self) -> None:
        assert self._process.stdout is not None
        while chunk := await self._process.stdout.read(4096):
            self._output += chunk.decode("utf-8", "replace")
            self._changed.set()
        self._changed.set()

    @property
    def output(self) -> str:
        """Everything the peer printed so far (for failure messages and reports)."""
        return self._output

    async def send(self, line: str) -> None:
        """Type one command line into the peer."""
        assert self._process.stdin is not None
        if self._process.returncode is not None:
            raise PeerError(f"{self.name} exited ({self._process.returncode}):\n{self._output}")
        self._process.stdin.write(line.encode() + b"\n")
        await self._process.stdin.drain()

    async def expect(self, pattern: str, timeout: float = STEP_TIMEOUT) -> re.Match[str]:
        """Wait until the peer prints text matching ``pattern``; fail after ``timeout`` s."""
        regex = re.compile(pattern, re.MULTILINE)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            match = regex.search(self._output, self._cursor)
            if match:
                self._cursor = match.end()
                return match
            remaining = deadline - loop.time()
            if remaining <= 0 or (self._reader.done() and not self._changed.is_set()):
                raise PeerError(
                    f"{self.name} did not print /{pattern}/ within {timeout} s; its output "
                    f"after the last match:\n{self._output[self._cursor :]}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def command(
        self, line: str, pattern: str, timeout: float = STEP_TIMEOUT
    ) -> re.Match[str]:
        """Send a command and wait for its answer."""
        await self.send(line)
        return await self.expect(pattern, timeout)

    async def close(self) -> None:
        """Stop the peer; it gets a moment to exit on its own, then it is killed."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self._process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._reader, 3)


def _node_argv(tool: str) -> list[str]:
    return ["node", "-r", str(PORT_OVERRIDE), str(NODE_LIB_DIR / "bin" / f"{tool}.js")]


async def start_node_client() -> InteractivePeer:
    """lwm2m-node-lib's interactive client (``iotagent-lwm2m-client``), quiet logging."""
    peer = await InteractivePeer.start(
        "iotagent-lwm2m-client",
        _node_argv("iotagent-lwm2m-client"),
        env={"LWM2M_LOG_LEVEL": "FATAL"},
        cwd=INTEROP_DIR,
    )
    await peer.expect(r"LWM2M-Client> ")
    return peer


@dataclass
class NodeServer:
    """lwm2m-node-lib's interactive server, started and listening on ``port``."""

    peer: InteractivePeer
    host: str
    port: int


async def start_node_server(host: str = "127.0.0.1") -> NodeServer:
    """Start ``iotagent-lwm2m-server`` on a free UDP port and wait until it listens."""
    port = free_udp_port(host)
    peer = await InteractivePeer.start(
        "iotagent-lwm2m-server",
        _node_argv("iotagent-lwm2m-server"),
        env={"LWM2M_SERVER_PORT": str(port), "LWM2M_LOG_LEVEL": "FATAL"},
        cwd=INTEROP_DIR,
    )
    await peer.expect(r"LWM2M-Server> ")
    await peer.command("start", r"Lightweight M2M Server started")
    return NodeServer(peer, host, port)


@dataclass
class CoapResult:
    """What a one-shot ``coap-client-*`` run printed, and its exit status."""

    returncode: int
    stdout: str
    stderr: str


LIBCOAP_CLIENT = "coap-client-notls"


async def libcoap_request(args: list[str], timeout: float = STEP_TIMEOUT) -> CoapResult:
    """Run libcoap's command-line client once with ``args``; bounded by ``timeout``."""
    process = await asyncio.create_subprocess_exec(
        LIBCOAP_CLIENT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PeerError(
            f"{LIBCOAP_CLIENT} {' '.join(args)} did not finish in {timeout} s"
        ) from None
    return CoapResult(
        process.returncode or 0, stdout.decode(errors="replace"), stderr.decode(errors="replace")
    )
