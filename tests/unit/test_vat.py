from datetime import date
from decimal import Decimal

import pytest

from routing.vat import EU_MEMBER_STATES, RATES_AS_OF, STANDARD_RATES, TaxTreatment, tax_treatment

EXPECTED_RATES = {
    "AT": "0.20", "BE": "0.21", "BG": "0.20", "HR": "0.25", "CY": "0.19", "CZ": "0.21",
    "DK": "0.25", "EE": "0.24", "FI": "0.255", "FR": "0.20", "DE": "0.19", "GR": "0.24",
    "HU": "0.27", "IE": "0.23", "IT": "0.22", "LV": "0.21", "LT": "0.21", "LU": "0.17",
    "MT": "0.18", "NL": "0.21", "PL": "0.23", "PT": "0.23", "RO": "0.21", "SK": "0.23",
    "SI": "0.22", "ES": "0.21", "SE": "0.25",
}  # fmt: skip


def test_rate_table_is_dated_and_covers_the_27_member_states():
    assert RATES_AS_OF == date(2026, 1, 1)
    assert len(EU_MEMBER_STATES) == 27
    assert EU_MEMBER_STATES == frozenset(EXPECTED_RATES)


@pytest.mark.parametrize(("country", "rate"), sorted(EXPECTED_RATES.items()))
def test_standard_rates_are_exact_decimals(country, rate):
    assert STANDARD_RATES[country] == Decimal(rate)
    assert isinstance(STANDARD_RATES[country], Decimal)


@pytest.mark.parametrize("buyer", ["US", "GB", "CH", "NO", "JP", "EL"])
@pytest.mark.parametrize("valid_vat", [True, False])
def test_buyer_outside_the_eu_is_not_applicable(buyer, valid_vat):
    assert tax_treatment("IE", buyer, valid_vat) == TaxTreatment("not_applicable", buyer, 0)


@pytest.mark.parametrize("valid_vat", [True, False])
def test_buyer_in_the_sellers_country_pays_the_standard_rate(valid_vat):
    assert tax_treatment("IE", "IE", valid_vat) == TaxTreatment("standard", "IE", Decimal("0.23"))


@pytest.mark.parametrize("buyer", sorted(EU_MEMBER_STATES - {"IE"}))
def test_other_eu_buyer_with_valid_vat_number_is_reverse_charged(buyer):
    assert tax_treatment("IE", buyer, True) == TaxTreatment("reverse_charge", buyer, 0)


@pytest.mark.parametrize("buyer", sorted(EU_MEMBER_STATES - {"IE"}))
def test_other_eu_buyer_without_vat_number_pays_their_countrys_rate(buyer):
    assert tax_treatment("IE", buyer, False) == TaxTreatment(
        "standard", buyer, STANDARD_RATES[buyer]
    )


def test_seller_country_is_configurable():
    assert tax_treatment("DE", "DE", True) == TaxTreatment("standard", "DE", Decimal("0.19"))
    assert tax_treatment("DE", "IE", True).treatment == "reverse_charge"
