"""The service layer's exception family, mapped to HTTP and CoAP codes at the edges.

Messages are for people: say what is wrong and what to do about it.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a DM-server service raises on bad input or state."""

    http_status = 400

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidInput(ServiceError):
    http_status = 422


class NotFound(ServiceError):
    http_status = 404


class Conflict(ServiceError):
    http_status = 409


class Forbidden(ServiceError):
    http_status = 403


class Unauthorized(ServiceError):
    http_status = 401


class TerminalUnreachable(ServiceError):
    """The terminal is offline, or its DTLS session is gone and it has not reconnected."""

    http_status = 409


class OperationTimeout(ServiceError):
    """The terminal did not answer within the bound; the operation may or may not have run."""

    http_status = 504


class RegistrationRefused(ServiceError):
    """A Register/Update the server does not accept; ``coap_code`` says how to answer."""

    def __init__(self, message: str, coap_code: int) -> None:
        super().__init__(message)
        self.coap_code = coap_code
