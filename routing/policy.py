"""Where a change goes: the billing center, the corporate portal, or an advisor (design.md §3.6)."""

from collections.abc import Iterable
from dataclasses import dataclass

# Least to most restrictive; an order goes where its most restrictive item goes.
DESTINATIONS = ("billing_center", "corporate_portal", "advisor_queue")
SEGMENTS = ("self_serve", "enterprise")
_PORTAL_KINDS = frozenset({"plan_upgrade", "licenses_added"})


@dataclass(frozen=True)
class Route:
    destination: str
    reason: str


@dataclass(frozen=True)
class TenantRule:
    """A tenant's extra rule; it can only send more changes to the advisors' queue."""

    change_kind: str
    reason: str
    segment: str | None = None  # None: applies to both segments


def route(segment: str, kinds: Iterable[str], rules: Iterable[TenantRule] = ()) -> Route:
    kinds = frozenset(kinds)
    base = _base_route(segment, kinds)
    if base.destination == "advisor_queue":
        return base
    for rule in rules:
        if rule.change_kind in kinds and rule.segment in (None, segment):
            return Route("advisor_queue", rule.reason)
    return base


def _base_route(segment: str, kinds: frozenset[str]) -> Route:
    if segment == "self_serve":
        if "plan_downgrade" in kinds:
            return Route("advisor_queue", "Plan downgrades are handled by support.")
        return Route("billing_center", "Self-serve changes are applied in the billing center.")
    if segment == "enterprise":
        if kinds <= _PORTAL_KINDS:
            return Route(
                "corporate_portal",
                "An enterprise upgrade or license addition becomes a price quote to accept "
                "in the corporate billing portal.",
            )
        return Route(
            "advisor_queue",
            "Enterprise changes other than upgrades and added licenses are handled by the "
            "account's advisor, or the Corporate Account Services pool.",
        )
    raise ValueError(f"unknown segment {segment!r}")


def most_restrictive(routes: Iterable[Route]) -> Route:
    # max() keeps the first of equals, so the first item's reason explains the order.
    return max(routes, key=lambda r: DESTINATIONS.index(r.destination))


def next_action(
    *, cart_has_other_items: bool, outstanding_requirements: bool, destination: str
) -> str:
    if cart_has_other_items:
        return "add_to_cart"
    if outstanding_requirements:
        return "provide_requirements"
    if destination == "advisor_queue":
        return "contact_advisor"
    return "place_order"
