"""English and French: the switch, else the contact's setting, else Accept-Language (else the
tenant's default language); money, dates and percentages formatted by Babel for the locale."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from babel import numbers
from flask import Flask, g, request, session
from flask_babel import Babel, format_currency, format_date, format_datetime, get_locale

LOCALES = ("en", "fr")
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    chosen = session.get("locale")
    if chosen in LOCALES:
        return chosen
    contact = _language(g.get("contact_locale"))
    if contact:
        return contact
    # The browser's wish, else the organisation's default language, else English.
    return request.accept_languages.best_match(LOCALES) or _language(g.get("tenant_locale")) or "en"


def _language(setting: str | None) -> str | None:
    if not setting:
        return None
    code = setting.replace("_", "-").split("-")[0].lower()
    return code if code in LOCALES else None


def money(amount, currency: str) -> str:
    if amount is None:
        return "—"
    return format_currency(Decimal(str(amount)), currency)


def day(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    return format_date(value, "medium")


def moment(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return format_datetime(value, "medium") + " UTC"


def percent(rate) -> str:
    # The locale's own pattern ("19 %" in French), keeping a rate's decimals (25.5 %).
    return numbers.format_percent(Decimal(str(rate)), locale=get_locale(), decimal_quantization=False)


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    # Stored times are naive UTC; shown as UTC (and said so) rather than guessing a zone.
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters.update(money=money, day=day, moment=moment, percent=percent)
    app.jinja_env.globals.update(get_locale=get_locale, LOCALES=LOCALES)
