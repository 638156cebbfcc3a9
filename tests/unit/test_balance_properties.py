"""Properties of the account's credit balance through an order (design.md §3.2).

test_pricing.py already covers: minor units, net = charges - credits, the total's identity and
"never negative from a non-negative balance". These pin the exact movement of the balance.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from hypothesis import given
from hypothesis import strategies as st

from routing.assessment import Terms
from routing.money import CURRENCIES, MINOR_UNITS, ZERO, quantize
from routing.periods import BILLING_PERIODS, add_period
from routing.pricing import ItemPrice, OrderTotals, price_item, price_order

D = Decimal
currencies = st.sampled_from(sorted(CURRENCIES))
balances = st.decimals(min_value=-200, max_value=20_000, places=3, allow_nan=False)
rates = st.sampled_from([D(0), D("0.17"), D("0.23"), D("0.255")])


@st.composite
def changes(draw, currency: str) -> ItemPrice:
    """A priced change: an existing subscription (paid or trial) or a new one."""
    price = st.decimals(min_value=0, max_value=5_000, places=2, allow_nan=False)
    proposed = Terms("new", draw(st.integers(1, 200)), draw(st.sampled_from(BILLING_PERIODS)))
    today = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)))
    if draw(st.booleans()):
        return price_item(today=today, currency=currency, proposed=proposed,
                          proposed_unit_price=quantize(draw(price), currency))
    period = draw(st.sampled_from(BILLING_PERIODS))
    start = today - timedelta(days=draw(st.integers(-5, 400)))
    return price_item(
        today=today, currency=currency, proposed=proposed,
        proposed_unit_price=quantize(draw(price), currency),
        current=Terms("old", draw(st.integers(1, 200)), period),
        current_unit_price=quantize(draw(price), currency),
        period_start=start, period_end=add_period(start, period), paid=draw(st.booleans()))


@st.composite
def orders(draw, max_items: int = 4):
    currency = draw(currencies)
    return currency, draw(st.lists(changes(currency), min_size=1, max_size=max_items))


def totals(currency, items, balance, rate=D(0)) -> OrderTotals:
    return price_order(items, currency=currency, credit_balance=balance, vat_rate=rate)


def spendable(balance: Decimal, currency: str) -> Decimal:
    """What of the balance may be applied: none if negative, never a fraction of a minor unit."""
    return max(balance, ZERO).quantize(D(1).scaleb(-MINOR_UNITS[currency]), rounding=ROUND_DOWN)


@given(orders(), balances, rates)
def test_the_balance_moves_by_exactly_what_the_rule_says(order, before, rate):
    currency, items = order
    t = totals(currency, items, before, rate)
    after = before - t.balance_applied + t.credit_added
    if t.net >= 0:
        assert after == before - min(spendable(before, currency), t.net)
    else:
        assert after == before + (-t.net)


@given(orders(), balances, rates)
def test_an_order_either_spends_the_balance_or_adds_to_it_never_both(order, before, rate):
    t = totals(*order, before, rate)
    assert t.balance_applied == 0 or t.credit_added == 0
    if t.net >= 0:
        assert t.credit_added == 0 and t.taxable + t.balance_applied == t.net
    else:
        assert t.balance_applied == 0 and t.taxable == 0 and t.tax == 0 and t.total_due == 0


@given(orders(), balances, rates)
def test_the_balance_is_never_overspent_nor_made_more_negative(order, before, rate):
    t = totals(*order, before, rate)
    assert 0 <= t.balance_applied <= max(before, ZERO)
    assert t.balance_applied <= max(t.net, ZERO)
    after = before - t.balance_applied + t.credit_added
    assert after >= min(before, ZERO)


@given(orders(), balances, balances, rates)
def test_more_balance_never_costs_more(order, one, other, rate):
    low, high = sorted((one, other))
    t_low, t_high = totals(*order, low, rate), totals(*order, high, rate)
    assert t_high.balance_applied >= t_low.balance_applied
    assert t_high.total_due <= t_low.total_due


@given(orders(), balances, rates, st.randoms(use_true_random=False))
def test_the_order_of_the_items_does_not_matter(order, before, rate, rnd):
    currency, items = order
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert totals(currency, shuffled, before, rate) == totals(currency, items, before, rate)


@given(currencies.flatmap(lambda c: st.tuples(st.just(c), st.lists(changes(c), min_size=1, max_size=6))),
       st.decimals(min_value=0, max_value=5_000, places=2, allow_nan=False))
def test_orders_priced_against_what_is_left_spend_the_balance_at_most_once(order, before):
    """Orders open at once, each priced against the balance less what the others applied (as the
    gateway does until they are carried out): together they never apply more than there was."""
    currency, items = order
    reserved = ZERO
    for item in items:
        reserved += totals(currency, [item], before - reserved).balance_applied
    assert reserved <= before
    assert before - reserved >= 0
