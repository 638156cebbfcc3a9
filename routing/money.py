"""Currency amounts: Decimal only, rounded half-up to the currency's minor unit."""

from decimal import ROUND_HALF_UP, Decimal

MINOR_UNITS = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "JPY": 0}
CURRENCIES = frozenset(MINOR_UNITS)
ZERO = Decimal(0)


def quantize(amount: Decimal, currency: str) -> Decimal:
    if currency not in MINOR_UNITS:
        raise ValueError(f"unsupported currency {currency!r}")
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), rounding=ROUND_HALF_UP)
