import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.assessment import (
    CHANGE_KINDS,
    NEW_SUBSCRIPTION,
    ChangeRefused,
    Terms,
    assess_change,
    assess_new_subscription,
)

RANKS = {"free": 0, "lite": 1, "standard": 2, "business": 3, "enterprise": 4}
CURRENT = Terms("standard", 5, "monthly")


def assess(status="active", plan=None, licenses=None, billing_period=None, assigned=0):
    return assess_change(
        current=CURRENT,
        status=status,
        plan=plan,
        licenses=licenses,
        billing_period=billing_period,
        plan_ranks=RANKS,
        assigned_licenses=assigned,
    )


def refusal(**kwargs) -> ChangeRefused:
    with pytest.raises(ChangeRefused) as caught:
        assess(**kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("request_", "kinds"),
    [
        ({"plan": "business"}, ("plan_upgrade",)),
        ({"plan": "lite"}, ("plan_downgrade",)),
        ({"licenses": 8}, ("licenses_added",)),
        ({"licenses": 2}, ("licenses_removed",)),
        ({"billing_period": "annual"}, ("billing_period_changed",)),
        ({"plan": "business", "licenses": 8}, ("plan_upgrade", "licenses_added")),
        (
            {"plan": "free", "licenses": 1, "billing_period": "annual"},
            ("plan_downgrade", "licenses_removed", "billing_period_changed"),
        ),
    ],
)
def test_change_kinds(request_, kinds):
    proposed, found = assess(**request_)
    assert found == kinds
    assert proposed == Terms(
        request_.get("plan", "standard"),
        request_.get("licenses", 5),
        request_.get("billing_period", "monthly"),
    )


@pytest.mark.parametrize("status", ["trial", "active"])
def test_trial_and_active_subscriptions_are_modifiable(status):
    assert assess(status=status, licenses=6)[1] == ("licenses_added",)


def test_expired_subscription_answers_subscribe_now():
    error = refusal(status="expired", licenses=6)
    assert error.code == "subscription_expired"
    assert error.details == {"next_action": "subscribe_now"}
    assert error.message


def test_canceled_subscription_is_refused():
    assert refusal(status="canceled", licenses=6).code == "subscription_canceled"


def test_status_is_checked_before_the_request():
    assert refusal(status="expired", plan="nope").code == "subscription_expired"


def test_unknown_status_is_a_programming_error():
    with pytest.raises(ValueError):
        assess(status="pending", licenses=6)


def test_unknown_plan_is_refused():
    assert refusal(plan="platinum").code == "unknown_plan"


def test_invalid_billing_period_is_refused():
    assert refusal(billing_period="weekly").code == "invalid_billing_period"


@pytest.mark.parametrize("licenses", [0, -3])
def test_fewer_than_one_license_is_refused(licenses):
    assert refusal(licenses=licenses).code == "invalid_licenses"


def test_licenses_below_those_assigned_are_refused():
    error = refusal(licenses=3, assigned=4)
    assert error.code == "licenses_in_use"
    assert error.details == {"assigned": 4}


def test_licenses_equal_to_those_assigned_are_allowed():
    assert assess(licenses=4, assigned=4)[1] == ("licenses_removed",)


def test_licenses_in_use_also_blocks_a_change_that_keeps_the_count():
    # Already over-assigned (e.g. data imported): any change must fix it first.
    assert refusal(plan="business", assigned=6).code == "licenses_in_use"


@pytest.mark.parametrize(
    "request_",
    [{}, {"plan": "standard"}, {"licenses": 5, "billing_period": "monthly"}],
)
def test_a_request_that_changes_nothing_is_refused(request_):
    assert refusal(**request_).code == "no_change"


def test_an_equal_rank_plan_counts_as_a_downgrade():
    # so a person, not a machine, decides on a sideways move
    _, kinds = assess_change(
        current=CURRENT,
        status="active",
        plan="standard-plus",
        licenses=None,
        billing_period=None,
        plan_ranks={**RANKS, "standard-plus": 2},
        assigned_licenses=0,
    )
    assert kinds == ("plan_downgrade",)


@given(
    plan=st.none() | st.sampled_from(sorted(RANKS)),
    licenses=st.none() | st.integers(1, 50),
    period=st.none() | st.sampled_from(["monthly", "annual"]),
)
def test_kinds_are_ordered_and_empty_only_for_a_refused_no_op(plan, licenses, period):
    try:
        proposed, kinds = assess(plan=plan, licenses=licenses, billing_period=period)
    except ChangeRefused as error:
        assert error.code == "no_change"
        assert Terms(plan or "standard", licenses or 5, period or "monthly") == CURRENT
    else:
        assert proposed != CURRENT
        assert kinds and kinds == tuple(k for k in CHANGE_KINDS if k in kinds)
        assert not {"plan_upgrade", "plan_downgrade"} <= set(kinds)
        assert not {"licenses_added", "licenses_removed"} <= set(kinds)


def test_new_subscription():
    assert assess_new_subscription(
        plan="business", licenses=3, billing_period="annual", plan_ranks=RANKS
    ) == (Terms("business", 3, "annual"), (NEW_SUBSCRIPTION,))


@pytest.mark.parametrize(
    ("plan", "licenses", "period", "code"),
    [
        ("platinum", 3, "annual", "unknown_plan"),
        ("business", 3, "weekly", "invalid_billing_period"),
        ("business", 0, "annual", "invalid_licenses"),
    ],
)
def test_new_subscription_is_validated(plan, licenses, period, code):
    with pytest.raises(ChangeRefused) as caught:
        assess_new_subscription(
            plan=plan, licenses=licenses, billing_period=period, plan_ranks=RANKS
        )
    assert caught.value.code == code
