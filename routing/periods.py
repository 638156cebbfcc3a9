"""Billing periods: calendar arithmetic for period ends and monthly equivalents."""

from calendar import monthrange
from datetime import date
from decimal import Decimal

BILLING_PERIODS = ("monthly", "annual")
_MONTHS = {"monthly": 1, "annual": 12}


def add_period(start: date, billing_period: str) -> date:
    # A day missing from the target month clamps to its last day (Jan 31 -> Feb 28/29).
    years, month0 = divmod(start.month - 1 + _months(billing_period), 12)
    year, month = start.year + years, month0 + 1
    return date(year, month, min(start.day, monthrange(year, month)[1]))


def monthly_equivalent(amount: Decimal, billing_period: str) -> Decimal:
    # Left unrounded: callers compare or round it once, at the edge.
    return amount / _months(billing_period)


def _months(billing_period: str) -> int:
    if billing_period not in _MONTHS:
        raise ValueError(f"unknown billing period {billing_period!r}")
    return _MONTHS[billing_period]
