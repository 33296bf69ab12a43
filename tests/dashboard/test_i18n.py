"""Every user-facing string of the dashboard is in the catalogues and has a Korean text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from dashboard import i18n

ROOT = Path(i18n.__file__).parent


def _extracted() -> set[str]:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None}
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options, keywords=keywords
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
