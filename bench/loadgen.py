"""A raw-UDP CoAP load generator: many simulated terminals, one UDP socket each.

aiocoap's client keeps one confirmable request in flight per remote, so one client context
cannot load a server; here every simulated terminal owns a socket and at most one
outstanding request, and a fixed window of terminals is busy at any time. Requests are
encoded once with aiocoap's message class; responses are matched by token from the header
alone, so the generator spends little CPU per message. Incoming requests from the server
(Read, Observe, Write, Execute) are answered at once, like a terminal that is always awake.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiocoap
from aiocoap import Message
from aiocoap.numbers.types import Type

from lwm2m_core.numbers import CoapCode, ContentFormat

#: RFC 7252 §4.8 ACK_TIMEOUT and MAX_RETRANSMIT, kept short: loopback has no real latency.
ACK_TIMEOUT_S = 1.0
MAX_RETRANSMIT = 3
HEADER = struct.Struct("!BBH")
COAP_VERSION_BITS = 0x40
#: What a simulated terminal answers to a Read of a path it has no prepared answer for.
READ_ANSWER = b"bench"
#: Prepared Read answers by Uri-Path: (content format, payload).
ReadAnswers = dict[tuple[str, ...], tuple[int, bytes]]


@dataclass
class Response:
    """The parts of a CoAP response the benchmark needs."""

    code: int
    payload: bytes
    location_path: tuple[str, ...] = ()


class RequestFailed(Exception):
    """No response after every retransmission."""


@dataclass
class Counters:
    """Totals over every simulated terminal of one run."""

    sent: int = 0
    retransmitted: int = 0
    failed: int = 0
    server_requests: int = 0
    #: Observe registrations from the server, and perf_counter() when the latest came.
    observes: int = 0
    last_observe_at: float = 0.0


class SimulatedTerminal(asyncio.DatagramProtocol):
    """One UDP socket: sends confirmable requests, answers the server's requests."""

    def __init__(
        self,
        endpoint: str,
        remote: tuple[str, int],
        counters: Counters,
        read_answers: ReadAnswers | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.remote = remote
        self.counters = counters
        self.read_answers = read_answers or {}
        self.location: tuple[str, ...] = ()
        self.transport: asyncio.DatagramTransport | None = None
        self._mids = itertools.count(int.from_bytes(os.urandom(2), "big"))
        self._tokens = itertools.count(1)
        self._pending: dict[bytes, asyncio.Future[Response]] = {}
        self._acked: dict[int, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def _next_mid(self) -> int:
        return next(self._mids) & 0xFFFF

    async def request(
        self,
        code: CoapCode,
        uri_path: Sequence[str],
        uri_query: Sequence[str] = (),
        payload: bytes = b"",
        content_format: ContentFormat | None = None,
    ) -> Response:
        """Send one confirmable request and wait for its (piggybacked or separate) response."""
        assert self.transport is not None
        message = Message(code=aiocoap.Code(code), uri_path=tuple(uri_path), payload=payload)
        message.mtype = Type.CON
        if uri_query:
            message.opt.uri_query = tuple(uri_query)
        if content_format is not None:
            message.opt.content_format = int(content_format)
        message.mid = self._next_mid()
        token = next(self._tokens).to_bytes(4, "big")
        message.token = token
        datagram = message.encode()
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        self._acked[message.mid] = token
        timeout = ACK_TIMEOUT_S
        try:
            for attempt in range(MAX_RETRANSMIT + 1):
                if attempt:
                    self.counters.retransmitted += 1
                self.transport.sendto(datagram, self.remote)
                self.counters.sent += 1
                try:
                    return await asyncio.wait_for(asyncio.shield(future), timeout)
                except TimeoutError:
                    timeout *= 2
            self.counters.failed += 1
            raise RequestFailed(f"{self.endpoint}: no answer to {code.name} {'/'.join(uri_path)}")
        finally:
            self._pending.pop(token, None)
            self._acked.pop(message.mid, None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < HEADER.size:
            return
        first, code, mid = HEADER.unpack_from(data)
        mtype = (first >> 4) & 0x3
        token_length = first & 0x0F
        token = data[HEADER.size : HEADER.size + token_length]
        if 1 <= code <= 31:  # a request from the server (class 0, not empty)
            self._answer_server_request(data, addr)
            return
        if code == CoapCode.EMPTY:
            # An empty ACK: the response will come separately; RST: treat as failure.
            if mtype == Type.RST:
                token = self._acked.get(mid, b"")
                future = self._pending.get(token)
                if future and not future.done():
                    future.set_exception(RequestFailed(f"{self.endpoint}: reset"))
            return
        if mtype == Type.CON:
            self._send_empty_ack(mid, addr)
        future = self._pending.get(token)
        if future is None or future.done():
            return
        location: tuple[str, ...] = ()
        if code == CoapCode.CREATED:
            location = tuple(Message.decode(data).opt.location_path)
        payload_start = data.find(b"\xff", HEADER.size + token_length)
        payload = data[payload_start + 1 :] if payload_start >= 0 else b""
        future.set_result(Response(code, payload, location))

    def _send_empty_ack(self, mid: int, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(HEADER.pack(COAP_VERSION_BITS | (Type.ACK << 4), 0, mid), addr)

    def _answer_server_request(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.counters.server_requests += 1
        request = Message.decode(data)
        if request.code == aiocoap.GET:
            fmt, payload = self.read_answers.get(
                tuple(request.opt.uri_path), (int(ContentFormat.TEXT), READ_ANSWER)
            )
            answer = Message(code=aiocoap.CONTENT, payload=payload)
            answer.opt.content_format = fmt
            if request.opt.observe is not None:
                answer.opt.observe = 0
                self.counters.observes += 1
                self.counters.last_observe_at = time.perf_counter()
        elif request.code == aiocoap.DELETE:
            answer = Message(code=aiocoap.DELETED)
        else:
            answer = Message(code=aiocoap.CHANGED)
        answer.mtype = Type.ACK if request.mtype == Type.CON else Type.NON
        answer.mid = request.mid if request.mtype == Type.CON else self._next_mid()
        answer.token = request.token
        self.transport.sendto(answer.encode(), addr)


def endpoint_names(count: int, prefix: str = "bench") -> list[str]:
    """The endpoint names of a fleet of ``count``, in order."""
    return [f"{prefix}-{number:05d}" for number in range(count)]


@dataclass
class Fleet:
    """Every simulated terminal of a run, each bound to its own loopback port."""

    terminals: list[SimulatedTerminal]
    counters: Counters

    @classmethod
    async def open(
        cls,
        count: int,
        remote: tuple[str, int],
        prefix: str = "bench",
        read_answers: ReadAnswers | None = None,
    ) -> Fleet:
        loop = asyncio.get_running_loop()
        counters = Counters()
        terminals = []
        for name in endpoint_names(count, prefix):
            terminal = SimulatedTerminal(name, remote, counters, read_answers)
            await loop.create_datagram_endpoint(lambda t=terminal: t, local_addr=(remote[0], 0))
            terminals.append(terminal)
        return cls(terminals, counters)

    def close(self) -> None:
        for terminal in self.terminals:
            if terminal.transport is not None:
                terminal.transport.close()


@dataclass
class PhaseResult:
    """How one phase went: completed operations, the time it took, latencies in ms."""

    name: str
    completed: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    #: perf_counter() at each completion, to see whether the rate holds as the load grows.
    completed_at: list[float] = field(default_factory=list)
    started_at: float = 0.0

    @property
    def rate_per_s(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, fraction: float) -> float | None:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else None
        cuts = statistics.quantiles(self.latencies_ms, n=100, method="inclusive")
        return cuts[round(fraction * 100) - 1]

    def rate_of_tenth(self, tenth: int) -> float | None:
        """Completions per second over one tenth (0 = first, 9 = last) of the completions."""
        if len(self.completed_at) < 20:
            return None
        times = [self.started_at, *self.completed_at]
        size = len(self.completed_at) // 10
        first, last = tenth * size, (tenth + 1) * size
        span = times[last] - times[first]
        return round(size / span, 1) if span > 0 else None

    def summary(self) -> dict[str, object]:
        p50, p99 = self.percentile(0.50), self.percentile(0.99)
        return {
            "rate_first_tenth_per_s": self.rate_of_tenth(0),
            "rate_last_tenth_per_s": self.rate_of_tenth(9),
            "completed": self.completed,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "rate_per_s": round(self.rate_per_s, 1),
            "p50_ms": None if p50 is None else round(p50, 3),
            "p99_ms": None if p99 is None else round(p99, 3),
        }


Operation = Callable[[SimulatedTerminal, int], Awaitable[bool]]


async def run_phase(
    name: str,
    terminals: Sequence[SimulatedTerminal],
    operations_per_terminal: int,
    window: int,
    operation: Operation,
    deadline_s: float,
) -> PhaseResult:
    """Run ``operation`` ``operations_per_terminal`` times on every terminal, ``window`` at once.

    Worker ``w`` owns terminals ``w, w + window, ...`` so no terminal ever has two requests
    in flight. The phase stops early at ``deadline_s``; what completed by then counts.
    """
    result = PhaseResult(name)
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + deadline_s

    async def worker(first: int) -> None:
        for round_number in range(operations_per_terminal):
            for terminal in terminals[first::window]:
                if loop.time() > stop_at:
                    return
                started = time.perf_counter()
                try:
                    ok = await operation(terminal, round_number)
                except RequestFailed:
                    ok = False
                if ok:
                    done = time.perf_counter()
                    result.completed += 1
                    result.latencies_ms.append((done - started) * 1000)
                    result.completed_at.append(done)
                else:
                    result.failed += 1

    started = result.started_at = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(min(window, len(terminals)))))
    result.elapsed_s = time.perf_counter() - started
    return result
