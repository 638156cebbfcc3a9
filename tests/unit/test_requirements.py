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
