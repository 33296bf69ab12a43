"""The agent's exception family: each names the CoAP response code the site answers with.

Object implementations raise these; the CoAP site (:mod:`device_client.site`) is the one edge
that turns them into responses, so no handler builds an error response of its own.
"""

from __future__ import annotations

from lwm2m_core.numbers import CoapCode


class AgentError(Exception):
    """Base of every error an LwM2M operation on the agent can end in."""

    code: CoapCode = CoapCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class BadRequest(AgentError):
    """Malformed payload, wrong type, out of range, or a value the object refuses."""

    code = CoapCode.BAD_REQUEST


class Unauthorized(AgentError):
    code = CoapCode.UNAUTHORIZED


class NotFound(AgentError):
    """The path names no object, instance or resource that exists here."""

    code = CoapCode.NOT_FOUND


class MethodNotAllowed(AgentError):
    """The operation is not allowed on this target (e.g. Execute on a readable resource)."""

    code = CoapCode.METHOD_NOT_ALLOWED


class NotAcceptable(AgentError):
    """The Accept option asks for a content format we cannot produce for this target."""

    code = CoapCode.NOT_ACCEPTABLE


class UnsupportedContentFormat(AgentError):
    code = CoapCode.UNSUPPORTED_CONTENT_FORMAT


class ServiceUnavailable(AgentError):
    """The agent is busy with something that excludes this operation (e.g. updating)."""

    code = CoapCode.SERVICE_UNAVAILABLE
