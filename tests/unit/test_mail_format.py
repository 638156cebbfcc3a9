"""Money in contacts' mails: Babel's formats per locale, never a negative zero."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.orders.mail import format_money, locale_of


@pytest.mark.parametrize(("amount", "currency", "locale", "shown"), [
    ("1598.56", "EUR", "en", "€1,598.56"),
    ("1598.56", "EUR", "fr", "1\u202f598,56\xa0€"),
    ("-51.79", "USD", "en", "-$51.79"),
    ("-0.00", "EUR", "en", "€0.00"),
    ("-0.004", "EUR", "fr", "0,00\xa0€"),
    ("12.5", "JPY", "en", "¥13"),
])
def test_format_money(amount, currency, locale, shown):
    assert format_money(Decimal(amount), currency, locale) == shown


@given(st.decimals(min_value=Decimal("-0.0049"), max_value=Decimal("0.0049"), places=4),
       st.sampled_from(["EUR", "USD", "GBP"]), st.sampled_from(["en", "fr"]))
def test_a_zero_is_never_negative(amount, currency, locale):
    assert not format_money(amount, currency, locale).startswith("-")


@pytest.mark.parametrize(("contact", "tenant", "chosen"), [
    ("fr", "en", "fr"), (None, "fr", "fr"), (None, None, "en"), ("de", None, "en"), (None, "xx", "en")])
def test_locale_of(contact, tenant, chosen):
    assert locale_of(contact, tenant) == chosen
