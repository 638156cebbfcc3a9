from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.money import CURRENCIES, MINOR_UNITS, ZERO, quantize


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("51.785", "EUR", "51.79"),  # half rounds up, not to even
        ("51.775", "EUR", "51.78"),
        ("51.7849", "EUR", "51.78"),
        ("-0.005", "USD", "-0.01"),  # half-up rounds away from zero
        ("1220.5", "JPY", "1221"),
        ("2", "GBP", "2.00"),
        ("0", "CHF", "0.00"),
    ],
)
def test_quantize_rounds_half_up_to_the_minor_unit(amount, currency, expected):
    result = quantize(Decimal(amount), currency)
    assert result == Decimal(expected)
    assert str(result) == expected


def test_unknown_currency_is_refused():
    with pytest.raises(ValueError):
        quantize(Decimal("1"), "XXX")


def test_currencies_are_the_minor_unit_table():
    assert CURRENCIES == {"EUR", "USD", "GBP", "CHF", "JPY"}
    assert ZERO == Decimal(0) and isinstance(ZERO, Decimal)


@given(
    st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=6),
    st.sampled_from(sorted(CURRENCIES)),
)
def test_quantized_amounts_carry_the_minor_unit_exponent(amount, currency):
    result = quantize(amount, currency)
    assert result.as_tuple().exponent == -MINOR_UNITS[currency]
    assert abs(result - amount) <= Decimal(1).scaleb(-MINOR_UNITS[currency]) / 2
