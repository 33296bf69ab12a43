"""The registration interface resources: ``/rd`` (Register) and ``/rd/<id>`` (Update,
De-register), per LwM2M 1.1 TS Core §6.2 and TS Transport §6.2 / §6.4.

Answers: 2.01 Created with Location-Path ``rd/<id>`` on Register, 2.04 Changed on Update,
2.02 Deleted on De-register; 4.00 for a malformed request (no ``ep``, bad link format,
absurd lifetime), 4.03 when the peer may not act for the endpoint, 4.04 for an unknown
registration, 4.12 for an unsupported LwM2M version.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.resource import PathCapable, Resource

from dm_server.errors import RegistrationRefused
from dm_server.lwm2m.dtls import psk_identity_of
from dm_server.lwm2m.site import remote_hostinfo
from dm_server.services.registrations import (
    Origin,
    RegisterParams,
    check_binding,
    check_lifetime,
    check_version,
)
from dm_server.settings import Settings
from lwm2m_core.errors import LwM2MError
from lwm2m_core.link import RegistrationObjects, parse_registration
from lwm2m_core.numbers import CoapCode, ContentFormat

log = logging.getLogger(__name__)

RD_PATH = ("rd",)
#: TS Core §6.2.1: lifetime defaults to 86400 s, version to 1.0, binding to U.
DEFAULT_LIFETIME_S = 86400
DEFAULT_VERSION = "1.0"
DEFAULT_BINDING = "U"
#: Query parameters of Register (``Q`` is the 1.1 queue-mode flag).
REGISTER_PARAMS = frozenset({"ep", "lt", "lwm2m", "b", "sms", "Q", "Qs"})
UPDATE_PARAMS = frozenset({"lt", "b", "sms", "Q", "Qs"})


def response(code: CoapCode, text: str = "", **options: Any) -> Message:
    message = Message(code=Code(int(code)), payload=text.encode()[:200])
    for name, value in options.items():
        setattr(message.opt, name, value)
    return message


def origin_of(request: Message) -> Origin:
    remote = request.remote
    scheme = "coaps" if getattr(remote, "scheme", "coap") == "coaps" else "coap"
    return Origin(scheme, remote_hostinfo(remote), psk_identity_of(remote))


def parse_query(request: Message, allowed: frozenset[str]) -> dict[str, str]:
    query: dict[str, str] = {}
    for item in request.opt.uri_query:
        name, _, value = item.partition("=")
        if name not in allowed:
            # Unknown parameters are ignored for forward compatibility, but logged.
            log.debug("ignoring query parameter %r", name)
            continue
        if name in query:
            raise RegistrationRefused(f"query parameter {name} given twice", CoapCode.BAD_REQUEST)
        query[name] = value
    return query


def parse_links(request: Message) -> tuple[str, RegistrationObjects]:
    fmt = request.opt.content_format
    if fmt is not None and int(fmt) != ContentFormat.LINK:
        raise RegistrationRefused(
            "the registration payload must be CoRE link format (40)",
            CoapCode.UNSUPPORTED_CONTENT_FORMAT,
        )
    try:
        text = request.payload.decode("utf-8")
        return text, parse_registration(text)
    except (UnicodeDecodeError, LwM2MError) as exc:
        raise RegistrationRefused(f"bad link format: {exc}", CoapCode.BAD_REQUEST) from None


def parse_lifetime(raw: str | None, settings: Settings) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 10:
        raise RegistrationRefused(f"lifetime {raw!r:.20} is not a number", CoapCode.BAD_REQUEST)
    return check_lifetime(int(raw), settings.min_lifetime_s, settings.max_lifetime_s)


def parse_register(request: Message, settings: Settings) -> RegisterParams:
    query = parse_query(request, REGISTER_PARAMS)
    endpoint = query.get("ep", "")
    if not endpoint:
        raise RegistrationRefused("Register needs the endpoint name: ep=", CoapCode.BAD_REQUEST)
    lifetime = parse_lifetime(query.get("lt"), settings)
    version = check_version(query.get("lwm2m", DEFAULT_VERSION))
    binding, queue_mode = check_binding(query.get("b", DEFAULT_BINDING))
    queue_mode = queue_mode or "Q" in query
    text, objects = parse_links(request)
    return RegisterParams(
        endpoint,
        lifetime if lifetime is not None else DEFAULT_LIFETIME_S,
        version,
        binding,
        queue_mode,
        text,
        objects,
    )


Handler = Callable[..., Awaitable[Message]]


class RegisterResource(Resource):  # type: ignore[misc]
    """``POST /rd``."""

    def __init__(self, on_register: Handler) -> None:
        super().__init__()
        self.on_register = on_register

    async def render_post(self, request: Message) -> Message:
        try:
            return await self.on_register(request)
        except RegistrationRefused as exc:
            return response(CoapCode(exc.coap_code), exc.message)


class RegistrationResource(Resource, PathCapable):  # type: ignore[misc]
    """``POST /rd/<id>`` (Update) and ``DELETE /rd/<id>`` (De-register)."""

    def __init__(self, on_update: Handler, on_deregister: Handler) -> None:
        super().__init__()
        self.on_update = on_update
        self.on_deregister = on_deregister

    @staticmethod
    def _location(request: Message) -> str:
        path = request.opt.uri_path
        if len(path) != 1 or not path[0]:
            raise RegistrationRefused("no such registration", CoapCode.NOT_FOUND)
        return str(path[0])

    async def render_post(self, request: Message) -> Message:
        try:
            return await self.on_update(self._location(request), request)
        except RegistrationRefused as exc:
            return response(CoapCode(exc.coap_code), exc.message)

    async def render_delete(self, request: Message) -> Message:
        try:
            return await self.on_deregister(self._location(request), request)
        except RegistrationRefused as exc:
            return response(CoapCode(exc.coap_code), exc.message)
