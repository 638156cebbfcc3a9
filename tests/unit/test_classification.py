import pytest

from tenants.classification import DEFAULT_ENTERPRISE_LICENSE_THRESHOLD, Segment, classify

CORPORATE = "managed by a representative (corporate billing channel)"
ADVISOR = "a dedicated advisor is assigned"
INVOICE = "pays on invoice terms"
SELF_SERVE = "no enterprise criterion applies"


def account(**overrides):
    args = dict(
        billing_channel="online", has_advisor=False, payment_terms="card", active_licenses=5
    )
    return classify(**{**args, **overrides})


def test_plain_online_card_account_is_self_serve():
    assert account() == Segment("self_serve", (SELF_SERVE,))


def test_rule_1_corporate_billing_channel():
    assert account(billing_channel="corporate") == Segment("enterprise", (CORPORATE,))


def test_rule_2_dedicated_advisor():
    assert account(has_advisor=True) == Segment("enterprise", (ADVISOR,))


def test_rule_3_invoice_terms():
    assert account(payment_terms="invoice") == Segment("enterprise", (INVOICE,))


@pytest.mark.parametrize(
    ("licenses", "segment"), [(99, "self_serve"), (100, "enterprise"), (250, "enterprise")]
)
def test_rule_4_default_license_threshold(licenses, segment):
    assert DEFAULT_ENTERPRISE_LICENSE_THRESHOLD == 100
    assert account(active_licenses=licenses).segment == segment


def test_rule_4_reason_names_the_count_and_threshold():
    assert account(active_licenses=120).reasons == (
        "120 active licenses reach the enterprise threshold of 100",
    )


def test_first_match_leads_and_the_other_matches_follow_in_rule_order():
    result = account(
        billing_channel="corporate", has_advisor=True, payment_terms="invoice", active_licenses=100
    )
    assert result.segment == "enterprise"
    assert result.reasons == (
        CORPORATE,
        ADVISOR,
        INVOICE,
        "100 active licenses reach the enterprise threshold of 100",
    )
    assert account(has_advisor=True, payment_terms="invoice").reasons == (ADVISOR, INVOICE)


@pytest.mark.parametrize(("threshold", "segment"), [(20, "enterprise"), (500, "self_serve")])
def test_tenant_overrides_the_threshold(threshold, segment):
    result = account(active_licenses=120, threshold=threshold)
    assert result.segment == segment


def test_threshold_override_appears_in_the_reason():
    assert account(active_licenses=20, threshold=20).reasons == (
        "20 active licenses reach the enterprise threshold of 20",
    )


@pytest.mark.parametrize(
    ("pinned", "overrides"),
    [
        ("self_serve", dict(billing_channel="corporate", has_advisor=True, active_licenses=900)),
        ("enterprise", {}),
    ],
)
def test_tenant_pins_the_segment(pinned, overrides):
    assert account(pinned=pinned, **overrides) == Segment(
        pinned, ("segment pinned by tenant policy",)
    )


def test_unknown_pinned_segment_is_refused():
    with pytest.raises(ValueError):
        account(pinned="corporate")
