"""Korean and English for the dashboard: gettext catalogues via Babel, one mechanism for
every user-facing string (templates and Python alike), dates and money in the user's locale.

The ``.po`` catalogues under ``dashboard/locale/`` are the source; the binary ``.mo`` files
are compiled from them at start (:func:`compile_catalogues`) and never committed.
The current request's locale lives in a context variable, so the one Jinja environment
serves every user in their own language.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime, get_timezone
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal, get_currency_precision
from babel.support import NullTranslations, Translations

from dm_server.errors import ServiceError

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LOCALES = ("ko", "en")
#: Times are shown in the user's zone; the language picks it (first customers are Korean).
TIMEZONES = {"ko": "Asia/Seoul", "en": "UTC"}
LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}

current_locale: ContextVar[str] = ContextVar("current_locale", default="en")


#: Where compiled catalogues are read from: beside the sources, or a private temporary
#: folder when the installed package is read-only.
_compiled_dir = LOCALE_DIR


def compile_catalogues(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Compile every ``.po`` whose ``.mo`` is missing or older; returns what was written."""
    global _compiled_dir
    target = locale_dir
    if not os.access(locale_dir, os.W_OK):
        target = Path(tempfile.mkdtemp(prefix="posfleet-locale-"))
    _compiled_dir = target
    written = []
    for po_path in sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = target / po_path.relative_to(locale_dir).with_suffix(".mo")
        mo_path.parent.mkdir(parents=True, exist_ok=True)
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalogue = read_po(handle, locale=po_path.parent.parent.name)
        with mo_path.open("wb") as handle:
            write_mo(handle, catalogue, use_fuzzy=False)
        written.append(mo_path)
    _translations.cache_clear()
    return written


@functools.cache
def _translations(locale: str) -> NullTranslations:
    translations = Translations.load(str(_compiled_dir), [locale], DOMAIN)
    if not isinstance(translations, Translations):
        log.warning("no compiled catalogue for %s: showing the English source text", locale)
    return translations


def negotiate(accept_language: str | None) -> str:
    """Pick ko or en from an Accept-Language header (the log-in page, before we know who)."""
    if not accept_language:
        return LOCALES[0]
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag[:2] in LOCALES:
            return tag[:2]
    return "en"


def gettext(message: str, /, **variables: object) -> str:
    text = _translations(current_locale.get()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, /, **variables: object) -> str:
    text = _translations(current_locale.get()).ungettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


#: The conventional name, so extraction (``pybabel extract``) finds the strings.
_ = gettext


def lazy_gettext(message: str) -> str:
    """Marks a string for extraction where it is defined; translated where it is shown."""
    return message


def error_text(error: ServiceError) -> str:
    """A service error in the reader's language: its template looked up in the catalogues,
    its values filled in (words from data, such as roles and licence states, translated too).
    A message not in the catalogue is shown in English, as the service wrote it."""
    from dashboard.vocabulary import term

    params = {k: term(v) if isinstance(v, str) else v for k, v in error.params.items()}
    return gettext(error.template, **params)


def format_when(moment: datetime | None, style: str = "medium") -> str:
    if moment is None:
        return "—"
    locale = current_locale.get()
    return format_datetime(
        moment, format=style, tzinfo=get_timezone(TIMEZONES.get(locale, "UTC")),
        locale=locale,
    )


def format_money(minor_units: int | None, currency: str) -> str:
    """An amount kept in minor units (as the database does), shown in the user's locale."""
    if minor_units is None:
        return "—"
    digits = get_currency_precision(currency or "KRW")
    return format_currency(
        minor_units / (10**digits), currency or "KRW", locale=current_locale.get()
    )


def format_number(value: int | float) -> str:
    return format_decimal(value, locale=current_locale.get())


def locale_display(locale: str) -> str:
    return Locale.parse(locale).get_display_name(current_locale.get()) or locale
