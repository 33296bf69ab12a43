"""The service layer's exception family, mapped to HTTP and CoAP codes at the edges.

Messages are for people: say what is wrong and what to do about it.

They are also translated, at the edge and not here (the services know nothing of the web
layer or of who is reading): a service raises an English template marked with :func:`N_`
and its values as keywords, ``raise NotFound(N_("no licence %(id)s here"), id=7)``.
``message`` is the English text (logs, tests, CoAP diagnostics); the dashboard and the REST
API look ``template`` up in the gettext catalogues (``dashboard/locale``) and fill in
``params`` in the reader's language.
"""

from __future__ import annotations

from typing import Any


def N_(template: str, /) -> str:
    """Marks a message for extraction into the catalogues; translated where it is shown."""
    return template


def fill(template: str, params: dict[str, Any]) -> str:
    """``template % params``, as gettext does: a template without values is left as is."""
    return template % params if params else template


class ServiceError(Exception):
    """Base of every error a DM-server service raises on bad input or state."""

    http_status = 400

    def __init__(self, template: str, /, **params: Any) -> None:
        self.template = template
        self.params = params
        self.message = fill(template, params)
        super().__init__(self.message)


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

    def __init__(self, template: str, coap_code: int, /, **params: Any) -> None:
        super().__init__(template, **params)
        self.coap_code = coap_code
