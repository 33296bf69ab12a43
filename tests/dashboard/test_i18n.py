"""Every user-facing string of the dashboard is in the catalogues and has a Korean text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from dashboard import i18n
from dm_server import errors

ROOT = Path(i18n.__file__).parent
#: The service layer marks its error messages with ``N_()``; the dashboard shows them.
SERVICE_ROOT = Path(errors.__file__).parent


def _extracted() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None,
                "N_": None}
    found = set()
    for root in (ROOT, SERVICE_ROOT):
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(root), method_map, options, keywords=keywords
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_korean_catalogue_is_complete_and_current() -> None:
    with (ROOT / "locale/ko/LC_MESSAGES/messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale="ko")
    translated = {m.id: m.string for m in catalogue if m.id}
    missing = sorted(_extracted() - set(translated))
    assert not missing, f"run pybabel extract/update (see docs/dashboard.md): {missing}"
    untranslated = sorted(k for k, v in translated.items() if not v)
    assert not untranslated, untranslated


def test_dates_and_money_follow_the_locale() -> None:
    i18n.compile_catalogues()
    moment = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    token = i18n.current_locale.set("ko")
    try:
        assert i18n.gettext("Licences") == "라이선스"
        assert i18n.format_when(moment, "short").startswith("26. 11. 23.")  # Seoul: UTC+9
        assert i18n.format_money(240000, "KRW") == "₩240,000"
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert i18n.gettext("Licences") == "Licences"
        assert i18n.format_money(1999, "USD") == "$19.99"
    finally:
        i18n.current_locale.reset(token)


def test_service_errors_are_translated_where_shown() -> None:
    """Services raise an English template and values; the dashboard fills in the reader's
    language, and the error still reads in English everywhere else (logs, tests, CoAP)."""
    i18n.compile_catalogues()
    error = errors.Conflict(
        errors.N_("licence %(id)s is %(state)s: nothing to revoke"), id=7, state="revoked"
    )
    assert error.message == str(error) == "licence 7 is revoked: nothing to revoke"
    token = i18n.current_locale.set("ko")
    try:
        assert i18n.error_text(error) == "7번 라이선스는 '해지됨' 상태라 해지할 것이 없습니다."
        unknown = errors.InvalidInput("a message nobody marked: 100%")
        assert i18n.error_text(unknown) == "a message nobody marked: 100%"
    finally:
        i18n.current_locale.reset(token)


def test_operation_timeout_is_summarised_in_the_users_language() -> None:
    from dashboard.pages import _summarise

    i18n.compile_catalogues()
    token = i18n.current_locale.set("ko")
    try:
        text = _summarise("Reboot", "/3/0/4", {"status": "timeout", "message": "no answer"})
    finally:
        i18n.current_locale.reset(token)
    assert text == ("Reboot /3/0/4: 단말기가 제때 응답하지 않았습니다. "
                    "실행되었는지는 알 수 없습니다.")
