"""Proration of a subscription change and the totals of an order (design.md §3.2, §3.3)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal

from routing.assessment import Terms
from routing.money import ZERO, quantize
from routing.periods import add_period, monthly_equivalent


def recurring(unit_price: Decimal, licenses: int, billing_period: str) -> Decimal:
    return monthly_equivalent(unit_price * licenses, billing_period)


@dataclass(frozen=True)
class ItemPrice:
    credit: Decimal  # >= 0, rounded; shown to the customer as a negative line
    charge: Decimal
    period_start: date
    period_end: date
    current_recurring: Decimal | None  # None for a new subscription
    proposed_recurring: Decimal
    rate_increase: bool


@dataclass(frozen=True)
class OrderTotals:
    credit: Decimal
    charge: Decimal
    net: Decimal
    balance_applied: Decimal
    credit_added: Decimal
    taxable: Decimal
    tax: Decimal
    total_due: Decimal


def price_item(
    *,
    today: date,
    currency: str,
    proposed: Terms,
    proposed_unit_price: Decimal,
    current: Terms | None = None,
    current_unit_price: Decimal | None = None,
    period_start: date | None = None,
    period_end: date | None = None,
    paid: bool = True,
) -> ItemPrice:
    proposed_recurring = recurring(proposed_unit_price, proposed.licenses, proposed.billing_period)
    credit = quantize(ZERO, currency)
    current_recurring = None
    if current is not None:
        if current_unit_price is None or period_start is None or period_end is None:
            raise ValueError("a change needs the current unit price and period")
        current_recurring = recurring(current_unit_price, current.licenses, current.billing_period)
        period_days = (period_end - period_start).days
        # Capped at the whole period: a period that has not started yet refunds at most
        # what was paid for it.
        remaining = min(max(0, (period_end - today).days), period_days)
        if paid and period_days > 0:
            # One rounding, after the division, so the figures match a hand calculation.
            unused = current_unit_price * current.licenses * remaining / period_days
            credit = quantize(unused, currency)
    return ItemPrice(
        credit=credit,
        charge=quantize(proposed_unit_price * proposed.licenses, currency),
        period_start=today,
        period_end=add_period(today, proposed.billing_period),
        current_recurring=current_recurring,
        proposed_recurring=proposed_recurring,
        # A new subscription replaces nothing: it raises the rate unless it is free.
        rate_increase=proposed_recurring > (ZERO if current_recurring is None else current_recurring),
    )


def price_order(
    items: Sequence[ItemPrice], *, currency: str, credit_balance: Decimal, vat_rate: Decimal
) -> OrderTotals:
    zero = quantize(ZERO, currency)
    credit = sum((item.credit for item in items), zero)
    charge = sum((item.charge for item in items), zero)
    net = charge - credit
    if net >= 0:
        # Rounded down: never apply a fraction more than the account holds.
        available = max(credit_balance, ZERO).quantize(zero, rounding=ROUND_DOWN)
        balance_applied = min(available, net)
        taxable, credit_added = net - balance_applied, zero
    else:
        balance_applied, taxable, credit_added = zero, zero, -net
    tax = quantize(taxable * vat_rate, currency)
    return OrderTotals(
        credit=credit,
        charge=charge,
        net=net,
        balance_applied=balance_applied,
        credit_added=credit_added,
        taxable=taxable,
        tax=tax,
        total_due=taxable + tax,
    )
