import pytest

from routing.requirements import Requirement, outstanding, requirements


def reqs(**overrides):
    args = dict(
        rate_increase=True,
        payment_terms="card",
        has_payment_method=False,
        country="DE",
        vat_number_required_by_policy=True,
        has_valid_vat_number=False,
    )
    return requirements(**{**args, **overrides})


def test_no_rate_increase_needs_nothing():
    assert reqs(rate_increase=False) == ()


@pytest.mark.parametrize(("has_card", "status"), [(False, "outstanding"), (True, "satisfied")])
def test_card_accounts_need_a_payment_method(has_card, status):
    assert Requirement("payment_method", status) in reqs(has_payment_method=has_card)


def test_invoice_accounts_never_need_a_payment_method():
    assert [r.type for r in reqs(payment_terms="invoice")] == ["vat_number"]


@pytest.mark.parametrize(("valid", "status"), [(False, "outstanding"), (True, "satisfied")])
def test_eu_accounts_need_a_vat_number(valid, status):
    assert Requirement("vat_number", status) in reqs(has_valid_vat_number=valid)


@pytest.mark.parametrize("country", ["US", "GB", "CH"])
def test_accounts_outside_the_eu_need_no_vat_number(country):
    assert [r.type for r in reqs(country=country)] == ["payment_method"]


def test_tenant_policy_can_waive_the_vat_number():
    assert [r.type for r in reqs(vat_number_required_by_policy=False)] == ["payment_method"]


def test_outstanding_keeps_only_what_is_missing_in_order():
    found = reqs(has_payment_method=True)
    assert found == (
        Requirement("payment_method", "satisfied"),
        Requirement("vat_number", "outstanding"),
    )
    assert outstanding(found) == (Requirement("vat_number", "outstanding"),)
    assert outstanding(()) == ()


# -- amended §3.3: a card is also required when the order charges anything --------------------
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

flags = st.booleans()


@given(rate_increase=flags, charges=flags, has_card=flags, terms=st.sampled_from(["card", "invoice"]),
       country=st.sampled_from(["DE", "FR", "IE", "US", "GB"]), policy=flags, has_vat=flags)
def test_payment_method_rule(rate_increase, charges, has_card, terms, country, policy, has_vat):
    found = {r.type: r.status for r in requirements(
        rate_increase=rate_increase, charges=charges, payment_terms=terms,
        has_payment_method=has_card, country=country, vat_number_required_by_policy=policy,
        has_valid_vat_number=has_vat)}
    needed = terms == "card" and (rate_increase or charges)
    assert ("payment_method" in found) == needed
    if needed:
        assert found["payment_method"] == ("satisfied" if has_card else "outstanding")
    # the VAT number still follows the rate alone
    assert ("vat_number" in found) == (rate_increase and country in {"DE", "FR", "IE"} and policy)


@given(charges=flags, has_card=flags)
def test_invoice_terms_never_need_a_card(charges, has_card):
    assert all(r.type != "payment_method" for r in requirements(
        rate_increase=True, charges=charges, payment_terms="invoice", has_payment_method=has_card,
        country="US", vat_number_required_by_policy=True, has_valid_vat_number=False))


def test_monthly_to_annual_on_a_card_account_without_a_card_is_outstanding():
    # the rate (monthly equivalent) falls, but a year is charged up front
    assert reqs(rate_increase=False, charges=True, country="US") == (
        Requirement("payment_method", "outstanding"),)


def test_no_rate_increase_and_nothing_to_charge_needs_nothing():
    assert reqs(rate_increase=False, charges=False) == ()
