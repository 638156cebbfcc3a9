import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.assessment import CHANGE_KINDS, NEW_SUBSCRIPTION
from routing.policy import (
    DESTINATIONS,
    Route,
    TenantRule,
    most_restrictive,
    next_action,
    route,
)

ALL_KINDS = (*CHANGE_KINDS, NEW_SUBSCRIPTION)


@pytest.mark.parametrize(
    ("segment", "kinds", "destination"),
    [
        # self-serve: applied directly, except anything containing a downgrade
        ("self_serve", ["plan_upgrade"], "billing_center"),
        ("self_serve", ["licenses_added"], "billing_center"),
        ("self_serve", ["licenses_removed"], "billing_center"),
        ("self_serve", ["billing_period_changed"], "billing_center"),
        (
            "self_serve",
            ["plan_upgrade", "licenses_removed", "billing_period_changed"],
            "billing_center",
        ),
        ("self_serve", [NEW_SUBSCRIPTION], "billing_center"),
        ("self_serve", ["plan_downgrade"], "advisor_queue"),
        ("self_serve", ["plan_downgrade", "licenses_added"], "advisor_queue"),
        ("self_serve", ["plan_downgrade", "billing_period_changed"], "advisor_queue"),
        # enterprise: upgrades and added licenses become a portal quote, the rest an advisor
        ("enterprise", ["plan_upgrade"], "corporate_portal"),
        ("enterprise", ["licenses_added"], "corporate_portal"),
        ("enterprise", ["plan_upgrade", "licenses_added"], "corporate_portal"),
        ("enterprise", ["plan_downgrade"], "advisor_queue"),
        ("enterprise", ["licenses_removed"], "advisor_queue"),
        ("enterprise", ["billing_period_changed"], "advisor_queue"),
        ("enterprise", ["plan_upgrade", "billing_period_changed"], "advisor_queue"),
        ("enterprise", ["plan_upgrade", "licenses_removed"], "advisor_queue"),
        ("enterprise", [NEW_SUBSCRIPTION], "advisor_queue"),
    ],
)
def test_routing_table(segment, kinds, destination):
    result = route(segment, kinds)
    assert result.destination == destination
    assert result.reason[0].isupper() and result.reason.endswith(".")


def test_self_serve_downgrade_reason_names_support():
    assert "support" in route("self_serve", ["plan_downgrade"]).reason


def test_enterprise_portal_reason_names_the_quote():
    assert "price quote" in route("enterprise", ["plan_upgrade"]).reason


def test_unknown_segment_is_a_programming_error():
    with pytest.raises(ValueError):
        route("online", ["plan_upgrade"])


BIG_LICENSE_CHANGES = TenantRule("licenses_added", "License additions are reviewed by finance.")


def test_tenant_rule_sends_a_matching_change_to_the_advisor_with_its_reason():
    assert route("self_serve", ["licenses_added"], [BIG_LICENSE_CHANGES]) == Route(
        "advisor_queue", "License additions are reviewed by finance."
    )
    assert route("enterprise", ["plan_upgrade", "licenses_added"], [BIG_LICENSE_CHANGES]) == Route(
        "advisor_queue", "License additions are reviewed by finance."
    )


def test_tenant_rule_ignores_other_changes():
    assert route("self_serve", ["plan_upgrade"], [BIG_LICENSE_CHANGES]).destination == (
        "billing_center"
    )


def test_tenant_rule_can_be_limited_to_a_segment():
    rule = TenantRule("plan_upgrade", "Upgrades need approval.", segment="enterprise")
    assert route("self_serve", ["plan_upgrade"], [rule]).destination == "billing_center"
    assert route("enterprise", ["plan_upgrade"], [rule]).destination == "advisor_queue"


def test_tenant_rule_keeps_the_built_in_reason_when_already_at_the_advisor():
    rule = TenantRule("plan_downgrade", "Tenant reason.")
    assert route("self_serve", ["plan_downgrade"], [rule]).reason != "Tenant reason."


rules = st.lists(
    st.builds(
        TenantRule,
        change_kind=st.sampled_from(ALL_KINDS) | st.text(max_size=5),
        reason=st.text(min_size=1, max_size=20),
        segment=st.none() | st.sampled_from(["self_serve", "enterprise", "other"]),
    ),
    max_size=6,
)
segments = st.sampled_from(["self_serve", "enterprise"])
kind_sets = st.sets(st.sampled_from(ALL_KINDS), min_size=1)


@given(segments, kind_sets, rules)
def test_no_tenant_rule_lets_a_downgrade_past_the_advisor_queue(segment, kinds, tenant_rules):
    kinds.add("plan_downgrade")
    assert route(segment, kinds, tenant_rules).destination == "advisor_queue"


@given(segments, kind_sets, rules)
def test_tenant_rules_only_make_routes_more_restrictive(segment, kinds, tenant_rules):
    with_rules = route(segment, kinds, tenant_rules)
    without = route(segment, kinds)
    assert DESTINATIONS.index(with_rules.destination) >= DESTINATIONS.index(without.destination)


def test_order_goes_where_its_most_restrictive_item_goes():
    portal = Route("corporate_portal", "p")
    center = Route("billing_center", "c")
    advisor = Route("advisor_queue", "a")
    assert most_restrictive([center, portal]) == portal
    assert most_restrictive([center, advisor, portal]) == advisor
    assert most_restrictive([center]) == center


def test_most_restrictive_keeps_the_first_reason_among_equals():
    assert (
        most_restrictive([Route("advisor_queue", "1"), Route("advisor_queue", "2")]).reason == "1"
    )


def test_destinations_run_from_least_to_most_restrictive():
    assert DESTINATIONS == ("billing_center", "corporate_portal", "advisor_queue")


@pytest.mark.parametrize(
    ("cart", "missing", "destination", "action"),
    [
        (True, True, "advisor_queue", "add_to_cart"),
        (True, False, "billing_center", "add_to_cart"),
        (False, True, "advisor_queue", "provide_requirements"),
        (False, True, "billing_center", "provide_requirements"),
        (False, False, "advisor_queue", "contact_advisor"),
        (False, False, "corporate_portal", "place_order"),
        (False, False, "billing_center", "place_order"),
    ],
)
def test_next_action_precedence(cart, missing, destination, action):
    assert (
        next_action(
            cart_has_other_items=cart,
            outstanding_requirements=missing,
            destination=destination,
        )
        == action
    )
