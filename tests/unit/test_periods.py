from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.periods import BILLING_PERIODS, add_period, monthly_equivalent


@pytest.mark.parametrize(
    ("start", "period", "expected"),
    [
        (date(2026, 3, 10), "monthly", date(2026, 4, 10)),
        (date(2026, 1, 31), "monthly", date(2026, 2, 28)),
        (date(2028, 1, 31), "monthly", date(2028, 2, 29)),  # leap year
        (date(2026, 3, 31), "monthly", date(2026, 4, 30)),
        (date(2026, 12, 15), "monthly", date(2027, 1, 15)),  # year rollover
        (date(2026, 1, 31), "annual", date(2027, 1, 31)),
        (date(2028, 2, 29), "annual", date(2029, 2, 28)),
        (date(2025, 6, 15), "annual", date(2026, 6, 15)),
    ],
)
def test_add_period_clamps_to_the_last_day_of_the_month(start, period, expected):
    assert add_period(start, period) == expected


@pytest.mark.parametrize("period", ["weekly", "Monthly", ""])
def test_unknown_billing_period_is_refused(period):
    with pytest.raises(ValueError):
        add_period(date(2026, 1, 1), period)
    with pytest.raises(ValueError):
        monthly_equivalent(Decimal(1), period)


@pytest.mark.parametrize(
    ("amount", "period", "expected"),
    [
        (Decimal("147.00"), "monthly", Decimal("147.00")),
        (Decimal("1470.00"), "annual", Decimal("122.5")),
        (Decimal("100"), "annual", Decimal(100) / 12),  # 8.333…, not rounded to 8.33
    ],
)
def test_monthly_equivalent_divides_annual_by_twelve_unrounded(amount, period, expected):
    assert monthly_equivalent(amount, period) == expected


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)),
    st.sampled_from(BILLING_PERIODS),
)
def test_period_end_keeps_the_day_or_clamps_to_the_month_end(start, period):
    end = add_period(start, period)
    months = 1 if period == "monthly" else 12
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    clamped_to_month_end = end.day < start.day and (end + timedelta(days=1)).day == 1
    assert end.day == start.day or clamped_to_month_end
