"""Words the pages translate from data (states, roles, editions, ...): listed here so that
``pybabel extract`` puts them into the catalogues; pages call ``_()`` on the value."""

from __future__ import annotations

from dashboard.i18n import lazy_gettext

TRADING_STATES = (lazy_gettext("running"), lazy_gettext("idle"), lazy_gettext("offline"))
ROLES = (lazy_gettext("admin"), lazy_gettext("dealer"), lazy_gettext("owner"))
EDITIONS = (lazy_gettext("basic"), lazy_gettext("standard"), lazy_gettext("premium"))
LIFECYCLES = (
    lazy_gettext("active"), lazy_gettext("renewed"), lazy_gettext("revoked"),
    lazy_gettext("transferred"),
)
DELIVERIES = (
    lazy_gettext("pending"), lazy_gettext("queued"), lazy_gettext("written"),
    lazy_gettext("failed"),
)
#: posfleet.licence_token.LicenceState names, lower case, as terminals report them.
TERMINAL_LICENCE_STATES = (
    lazy_gettext("valid"), lazy_gettext("grace"), lazy_gettext("expired"),
    lazy_gettext("invalid"), lazy_gettext("not_yet_valid"), lazy_gettext("absent"),
)
FEATURES = (
    lazy_gettext("face-recognition"), lazy_gettext("loyalty"), lazy_gettext("emotion"),
    lazy_gettext("reports"),
)
#: Object 26243 Event Type values.
EVENT_KINDS = (
    lazy_gettext("sale"), lazy_gettext("refund"), lazy_gettext("void"),
    lazy_gettext("drawer_open"), lazy_gettext("error"), lazy_gettext("shift_open"),
    lazy_gettext("shift_close"),
)
AUDIT_KINDS = (
    lazy_gettext("account"), lazy_gettext("terminal"), lazy_gettext("licence"),
    lazy_gettext("operation"), lazy_gettext("server"),
)
ACCOUNT_STATUS = (lazy_gettext("disabled"),)


def term(value: object) -> str:
    """A word from data in the user's language when it is one of ours; anything else (a
    string a terminal made up) is shown as it came, escaped by the template."""
    from dashboard.i18n import gettext

    text = str(value)
    return gettext(text) if text in KNOWN else text


KNOWN = frozenset(
    (*TRADING_STATES, *ROLES, *EDITIONS, *LIFECYCLES, *DELIVERIES, *TERMINAL_LICENCE_STATES,
     *FEATURES, *EVENT_KINDS, *AUDIT_KINDS, *ACCOUNT_STATUS)
)
