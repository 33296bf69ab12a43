"""The client side of the LwM2M registration interface (TS Core §6.2, §5.3).

Register, Update before the lifetime ends, re-register after losing the server, De-register
on a clean stop. Waits after failures grow exponentially and are drawn uniformly from
``[0, delay]`` ("full jitter"), so a fleet that lost its server does not come back all in
the same second.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import aiocoap
from aiocoap.numbers.codes import Code

from device_client import coap_request
from device_client.settings import TerminalSettings
from lwm2m_core.link import RegistrationObjects, format_registration
from lwm2m_core.numbers import CoapCode, ContentFormat
from lwm2m_core.path import LwM2mPath

LWM2M_VERSION = "1.1"
#: The content format announced in the registration's ``ct`` (the server's default for us).
#: One number: RFC 7252 allows a quoted list, but Wakaama's server refuses it with 4.00.
#: TLV, SenML-JSON, text and opaque are answered too when a request asks for them.
ANNOUNCED_FORMATS = (int(ContentFormat.SENML_CBOR),)


class RegistrationError(Exception):
    """The server refused or did not answer a registration request."""

    def __init__(self, message: str, code: CoapCode | None = None) -> None:
        super().__init__(message)
        self.code = code


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(maximum, initial * 2**attempt)]."""
    ceiling = min(maximum, initial * (2 ** min(attempt, 30)))
    return rng.uniform(0, ceiling)


@dataclass
class RegistrationState:
    location: tuple[str, ...] = ()
    registered_at: float = 0.0
    server_hostinfo: str = ""
    registrations: int = 0


class RegistrationClient:
    """Keeps the agent registered with one server while :meth:`run` runs."""

    def __init__(
        self,
        context: aiocoap.Context,
        settings: TerminalSettings,
        objects: Callable[[], list[LwM2mPath]],
        lifetime: Callable[[], int],
        logger: logging.Logger,
        rng: random.Random | None = None,
    ) -> None:
        self.context = context
        self.settings = settings
        self.objects = objects
        self.lifetime = lifetime
        self.log = logger
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.state = RegistrationState()
        self.registered = asyncio.Event()
        self._update_now = asyncio.Event()
        self._sent_objects: list[LwM2mPath] = []
        self._sent_lifetime = 0
        self.on_registered: list[Callable[[], None]] = []

    @property
    def base_uri(self) -> str:
        return self.settings.server_uri.rstrip("/")

    def trigger_update(self) -> None:
        """Send an Update soon (object list, lifetime or binding changed, or the server asked)."""
        self._update_now.set()

    def _payload(self, paths: list[LwM2mPath]) -> bytes:
        objects: dict[int, list[int]] = {}
        for path in paths:
            assert path.object_id is not None
            instances = objects.setdefault(path.object_id, [])
            if path.object_instance_id is not None:
                instances.append(path.object_instance_id)
        registration = RegistrationObjects(
            root="/", content_formats=ANNOUNCED_FORMATS,
            objects={oid: tuple(iids) for oid, iids in objects.items()},
        )
        return format_registration(registration).encode()

    async def _request(self, message: aiocoap.Message) -> aiocoap.Message:
        try:
            return await coap_request.request(self.context, message,
                                              self.settings.request_timeout)
        except TimeoutError:
            raise RegistrationError("no answer from the server") from None
        except aiocoap.error.Error as exc:
            raise RegistrationError(f"{type(exc).__name__}: {exc}") from None
        except OSError as exc:
            raise RegistrationError(f"network: {exc}") from None

    async def register(self) -> None:
        paths = self.objects()
        lifetime = self.lifetime()
        query = (f"ep={quote(self.settings.endpoint, safe='')}&lt={lifetime}"
                 f"&lwm2m={LWM2M_VERSION}&b={self.settings.binding}")
        message = aiocoap.Message(
            code=Code.POST, uri=f"{self.base_uri}/rd?{query}", payload=self._payload(paths),
            content_format=int(ContentFormat.LINK),
        )
        response = await self._request(message)
        if response.code != Code.CREATED or not response.opt.location_path:
            raise RegistrationError(
                f"Register answered {response.code} {response.payload[:100]!r}",
                CoapCode(int(response.code)),
            )
        self.state = RegistrationState(
            location=tuple(response.opt.location_path), registered_at=time.monotonic(),
            server_hostinfo=response.remote.hostinfo,
            registrations=self.state.registrations + 1,
        )
        self._sent_objects, self._sent_lifetime = paths, lifetime
        self.registered.set()
        self.log.info("registered as %s at /%s (lifetime %d s)", self.settings.endpoint,
                      "/".join(self.state.location), lifetime)
        for callback in list(self.on_registered):
            callback()

    async def update(self) -> None:
        paths, lifetime = self.objects(), self.lifetime()
        params = []
        if lifetime != self._sent_lifetime:
            params.append(f"lt={lifetime}")
        payload = self._payload(paths) if paths != self._sent_objects else b""
        uri = f"{self.base_uri}/{'/'.join(self.state.location)}"
        if params:
            uri += "?" + "&".join(params)
        message = aiocoap.Message(code=Code.POST, uri=uri, payload=payload)
        if payload:
            message.opt.content_format = int(ContentFormat.LINK)
        response = await self._request(message)
        if response.code != Code.CHANGED:
            raise RegistrationError(f"Update answered {response.code}",
                                    CoapCode(int(response.code)))
        self._sent_objects, self._sent_lifetime = paths, lifetime
        self.state.registered_at = time.monotonic()
        self.log.debug("registration updated")

    async def deregister(self, timeout: float = 2.0) -> None:
        if not self.registered.is_set():
            return
        self.registered.clear()
        uri = f"{self.base_uri}/{'/'.join(self.state.location)}"
        try:
            await coap_request.request(
                self.context, aiocoap.Message(code=Code.DELETE, uri=uri), timeout)
            self.log.info("de-registered")
        except (TimeoutError, aiocoap.error.Error, OSError) as exc:
            self.log.info("de-register got no answer (%s)", type(exc).__name__)

    def _next_update_in(self) -> float:
        lifetime = self.lifetime()
        due = self.state.registered_at + lifetime * (1 - self.settings.update_margin)
        return max(0.0, due - time.monotonic())

    async def run(self) -> None:
        """Register, keep the registration alive, re-register with backoff when it is lost."""
        attempt = 0
        while True:
            try:
                await self.register()
            except RegistrationError as exc:
                delay = backoff_delay(attempt, self.settings.backoff_initial,
                                      self.settings.backoff_max, self.rng)
                attempt += 1
                self.log.warning("registration failed (%s); retry in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            await self._keep_alive()

    async def _keep_alive(self) -> None:
        """Send Updates until one fails; then return so :meth:`run` re-registers."""
        while True:
            self._update_now.clear()
            try:
                async with asyncio.timeout(self._next_update_in()):
                    await self._update_now.wait()
            except TimeoutError:
                pass
            try:
                await self.update()
            except RegistrationError as exc:
                self.registered.clear()
                self.log.warning("update failed (%s); registering again", exc)
                if exc.code is None:
                    # The server did not answer: wait a jittered moment before registering.
                    await asyncio.sleep(backoff_delay(
                        0, self.settings.backoff_initial, self.settings.backoff_max, self.rng))
                return
