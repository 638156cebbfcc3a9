from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from routing.assessment import ChangeRefused, Terms, assess_change
from routing.money import CURRENCIES, MINOR_UNITS, quantize
from routing.periods import BILLING_PERIODS, add_period
from routing.pricing import ItemPrice, OrderTotals, price_item, price_order, recurring
from routing.requirements import Requirement, outstanding, requirements
from routing.vat import tax_treatment

D = Decimal


# --- the worked examples of design.md (seller IE) ---------------------------------------


def test_example_1_upgrade_with_more_licenses_reverse_charged_in_germany():
    item = price_item(
        today=date(2026, 3, 10),
        currency="EUR",
        current=Terms("standard", 5, "monthly"),
        current_unit_price=D("29.00"),
        period_start=date(2026, 2, 20),
        period_end=date(2026, 3, 20),
        proposed=Terms("business", 8, "monthly"),
        proposed_unit_price=D("49.00"),
    )
    assert (item.credit, item.charge) == (D("51.79"), D("392.00"))
    assert (item.period_start, item.period_end) == (date(2026, 3, 10), date(2026, 4, 10))
    assert item.rate_increase

    tax = tax_treatment("IE", "DE", has_valid_vat_number=True)
    assert (tax.treatment, tax.country, tax.rate) == ("reverse_charge", "DE", D(0))
    totals = price_order([item], currency="EUR", credit_balance=D("10.00"), vat_rate=tax.rate)
    assert totals == OrderTotals(
        credit=D("51.79"),
        charge=D("392.00"),
        net=D("340.21"),
        balance_applied=D("10.00"),
        credit_added=D("0.00"),
        taxable=D("330.21"),
        tax=D("0.00"),
        total_due=D("330.21"),
    )
    assert str(-totals.credit) == "-51.79"
    assert str(totals.tax) == "0.00"


def test_example_2_fewer_licenses_on_an_annual_plan_in_ireland():
    item = price_item(
        today=date(2026, 1, 31),
        currency="EUR",
        current=Terms("lite", 20, "annual"),
        current_unit_price=D("150.00"),
        period_start=date(2025, 6, 15),
        period_end=date(2026, 6, 15),
        proposed=Terms("lite", 12, "annual"),
        proposed_unit_price=D("150.00"),
    )
    assert (item.credit, item.charge) == (D("1109.59"), D("1800.00"))
    assert (item.period_start, item.period_end) == (date(2026, 1, 31), date(2027, 1, 31))
    assert not item.rate_increase

    tax = tax_treatment("IE", "IE", has_valid_vat_number=False)
    assert (tax.treatment, tax.rate) == ("standard", D("0.23"))
    totals = price_order([item], currency="EUR", credit_balance=D("0.00"), vat_rate=tax.rate)
    assert (totals.net, totals.balance_applied, totals.credit_added) == (
        D("690.41"),
        D("0.00"),
        D("0.00"),
    )
    assert (totals.tax, totals.total_due) == (D("158.79"), D("849.20"))
    assert (
        requirements(
            rate_increase=item.rate_increase,
            payment_terms="card",
            has_payment_method=False,
            country="IE",
            vat_number_required_by_policy=True,
            has_valid_vat_number=False,
        )
        == ()
    )


def test_example_3_annual_to_monthly_in_the_us_adds_credit():
    item = price_item(
        today=date(2026, 1, 31),
        currency="USD",
        current=Terms("business", 3, "annual"),
        current_unit_price=D("490.00"),
        period_start=date(2025, 11, 30),
        period_end=date(2026, 11, 30),
        proposed=Terms("business", 3, "monthly"),
        proposed_unit_price=D("49.00"),
    )
    assert (item.credit, item.charge) == (D("1220.30"), D("147.00"))
    assert (item.period_start, item.period_end) == (date(2026, 1, 31), date(2026, 2, 28))
    assert (item.current_recurring, item.proposed_recurring) == (D("122.50"), D("147.00"))
    assert item.rate_increase

    tax = tax_treatment("IE", "US", has_valid_vat_number=False)
    assert (tax.treatment, tax.rate) == ("not_applicable", D(0))
    totals = price_order([item], currency="USD", credit_balance=D("5.00"), vat_rate=tax.rate)
    assert totals.net == D("-1073.30")
    assert (totals.balance_applied, totals.credit_added) == (D("0.00"), D("1073.30"))
    assert (totals.tax, totals.total_due) == (D("0.00"), D("0.00"))
    reqs = requirements(
        rate_increase=item.rate_increase,
        payment_terms="card",
        has_payment_method=False,
        country="US",
        vat_number_required_by_policy=True,
        has_valid_vat_number=False,
    )
    assert outstanding(reqs) == (Requirement("payment_method", "outstanding"),)


# --- single rules ------------------------------------------------------------------------


def change(**overrides) -> ItemPrice:
    args = dict(
        today=date(2026, 3, 10),
        currency="EUR",
        current=Terms("standard", 5, "monthly"),
        current_unit_price=D("29.00"),
        period_start=date(2026, 2, 20),
        period_end=date(2026, 3, 20),
        proposed=Terms("business", 8, "monthly"),
        proposed_unit_price=D("49.00"),
    )
    return price_item(**{**args, **overrides})


def test_trial_gets_no_credit():
    item = change(paid=False)
    assert item.credit == D("0.00") and item.charge == D("392.00")
    assert item.rate_increase  # still compared against the trial's catalog price


def test_new_subscription_gets_no_credit_and_counts_as_a_rate_increase():
    item = price_item(
        today=date(2026, 1, 31),
        currency="JPY",
        proposed=Terms("business", 3, "annual"),
        proposed_unit_price=D("49000"),
    )
    assert (item.credit, item.charge, item.current_recurring) == (D(0), D(147000), None)
    assert str(item.credit) == "0"
    assert (item.period_start, item.period_end) == (date(2026, 1, 31), date(2027, 1, 31))
    assert item.rate_increase


def test_a_new_free_subscription_is_no_rate_increase():
    # recurring(new) = 0 is not more than the nothing it replaces
    item = price_item(today=date(2026, 3, 10), currency="EUR", proposed=Terms("free", 3, "monthly"),
                      proposed_unit_price=D("0"))
    assert (item.charge, item.rate_increase) == (D("0.00"), False)


@pytest.mark.parametrize(
    ("today", "credit"),
    [
        (date(2026, 3, 20), "0.00"),  # period end: nothing left
        (date(2026, 4, 2), "0.00"),  # past the end: never negative
        (date(2026, 2, 20), "145.00"),  # first day: the whole period
        (date(2026, 2, 1), "145.00"),  # before the period started: at most what was paid
    ],
)
def test_credit_is_bounded_by_the_period(today, credit):
    assert change(today=today).credit == D(credit)


def test_empty_period_gives_no_credit():
    assert change(period_start=date(2026, 3, 20)).credit == D("0.00")


def test_change_needs_the_current_price_and_period():
    with pytest.raises(ValueError):
        change(current_unit_price=None)


def test_equal_rate_is_not_an_increase():
    # 12 licenses a year at 120 = 120/month = 10 licenses a month at 12
    item = change(
        current=Terms("lite", 12, "annual"),
        current_unit_price=D("120.00"),
        proposed=Terms("lite", 10, "monthly"),
        proposed_unit_price=D("12.00"),
    )
    assert item.current_recurring == item.proposed_recurring == D(120)
    assert not item.rate_increase


def test_recurring_is_the_unrounded_monthly_equivalent():
    assert recurring(D("10.00"), 1, "annual") == D(10) / 12
    assert recurring(D("49.00"), 3, "monthly") == D("147.00")


def test_order_sums_items_then_nets_balances_and_taxes_once():
    a = change()  # credit 51.79, charge 392.00
    b = change(proposed=Terms("business", 1, "monthly"))  # credit 51.79, charge 49.00
    totals = price_order([a, b], currency="EUR", credit_balance=D("100.00"), vat_rate=D("0.23"))
    assert (totals.credit, totals.charge, totals.net) == (D("103.58"), D("441.00"), D("337.42"))
    assert (totals.balance_applied, totals.taxable) == (D("100.00"), D("237.42"))
    assert (totals.tax, totals.total_due) == (D("54.61"), D("292.03"))  # 54.6066 once


def test_balance_covers_at_most_the_net():
    totals = price_order([change()], currency="EUR", credit_balance=D("500"), vat_rate=D("0.2"))
    assert (totals.balance_applied, totals.taxable, totals.total_due) == (
        D("340.21"),
        D("0.00"),
        D("0.00"),
    )


@pytest.mark.parametrize(("balance", "applied"), [("-25.00", "0.00"), ("10.009", "10.00")])
def test_negative_or_fractional_balance_is_never_over_applied(balance, applied):
    totals = price_order([change()], currency="EUR", credit_balance=D(balance), vat_rate=D(0))
    assert str(totals.balance_applied) == applied


def test_empty_order_is_zero():
    totals = price_order([], currency="GBP", credit_balance=D("3.00"), vat_rate=D("0.2"))
    assert totals.total_due == D("0.00") and str(totals.net) == "0.00"


# --- properties --------------------------------------------------------------------------

currencies = st.sampled_from(sorted(CURRENCIES))
periods = st.sampled_from(BILLING_PERIODS)
prices = st.decimals(min_value=0, max_value=10_000, places=3, allow_nan=False)
licenses = st.integers(1, 500)


@st.composite
def items(draw, currency):
    start = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
    current_period = draw(periods)
    end = add_period(start, current_period)
    today = start + timedelta(days=draw(st.integers(-10, (end - start).days + 10)))
    current = Terms("old", draw(licenses), current_period)
    price = quantize(draw(prices), currency)
    item = price_item(
        today=today,
        currency=currency,
        current=current,
        current_unit_price=price,
        period_start=start,
        period_end=end,
        proposed=Terms("new", draw(licenses), draw(periods)),
        proposed_unit_price=quantize(draw(prices), currency),
        paid=draw(st.booleans()),
    )
    return item, (price, current.licenses, today, start, end)


@st.composite
def orders(draw):
    currency = draw(currencies)
    drawn = draw(st.lists(items(currency), max_size=4))
    balance = draw(st.decimals(min_value=-100, max_value=5_000, places=3, allow_nan=False))
    rate = draw(st.sampled_from([D(0), D("0.17"), D("0.23"), D("0.255")]))
    return currency, drawn, balance, rate


def totals_of(order) -> OrderTotals:
    currency, drawn, balance, rate = order
    return price_order(
        [item for item, _ in drawn], currency=currency, credit_balance=balance, vat_rate=rate
    )


@given(orders())
def test_every_amount_has_the_currencys_minor_unit(order):
    currency, drawn, _, _ = order
    totals = totals_of(order)
    amounts = [getattr(totals, name) for name in OrderTotals.__dataclass_fields__]
    amounts += [a for item, _ in drawn for a in (item.credit, item.charge)]
    assert {a.as_tuple().exponent for a in amounts} <= {-MINOR_UNITS[currency]}


@given(orders())
def test_net_is_charges_minus_credits_and_nothing_is_negative(order):
    priced = [item for item, _ in order[1]]
    t = totals_of(order)
    assert t.net == sum(i.charge for i in priced) - sum(i.credit for i in priced)
    assert t.total_due >= 0 and t.tax >= 0
    assert t.balance_applied >= 0 and t.credit_added >= 0
    assert t.total_due == t.net - t.balance_applied + t.credit_added + t.tax


@given(orders())
def test_balance_after_the_order_is_never_negative(order):
    balance = order[2]
    assume(balance >= 0)
    totals = totals_of(order)
    assert balance - totals.balance_applied + totals.credit_added >= 0


@given(st.data())
def test_credit_never_exceeds_the_unused_days_worth(data):
    currency = data.draw(currencies)
    item, (price, count, today, start, end) = data.draw(items(currency))
    remaining = max(0, (end - today).days)
    assert 0 <= item.credit <= quantize(price * count * remaining / (end - start).days, currency)


@given(
    plan=st.sampled_from(["lite", "standard"]),
    count=licenses,
    period=periods,
    status=st.sampled_from(["trial", "active"]),
)
def test_a_no_op_change_is_refused_before_it_is_priced(plan, count, period, status):
    current = Terms(plan, count, period)
    with pytest.raises(ChangeRefused) as caught:
        assess_change(
            current=current,
            status=status,
            plan=plan,
            licenses=count,
            billing_period=period,
            plan_ranks={"lite": 1, "standard": 2},
            assigned_licenses=0,
        )
    assert caught.value.code == "no_change"
