"""What a requested subscription change is, and whether it may be made at all."""

from collections.abc import Mapping
from dataclasses import dataclass

from routing.periods import BILLING_PERIODS

CHANGE_KINDS = (
    "plan_upgrade",
    "plan_downgrade",
    "licenses_added",
    "licenses_removed",
    "billing_period_changed",
)
NEW_SUBSCRIPTION = "new_subscription"
MODIFIABLE_STATUSES = ("trial", "active")


class ChangeRefused(Exception):
    """A change the customer asked for and may not make; `code` is the API's error code."""

    def __init__(self, code: str, message: str, **details):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Terms:
    plan: str
    licenses: int
    billing_period: str


def assess_change(
    *,
    current: Terms,
    status: str,
    plan: str | None,
    licenses: int | None,
    billing_period: str | None,
    plan_ranks: Mapping[str, int],
    assigned_licenses: int,
) -> tuple[Terms, tuple[str, ...]]:
    if status == "expired":
        raise ChangeRefused(
            "subscription_expired",
            "The subscription has expired and cannot be modified; subscribe again instead.",
            next_action="subscribe_now",
        )
    if status == "canceled":
        raise ChangeRefused(
            "subscription_canceled", "The subscription is canceled and cannot be modified."
        )
    if status not in MODIFIABLE_STATUSES:
        raise ValueError(f"unknown subscription status {status!r}")
    proposed = Terms(
        plan=current.plan if plan is None else plan,
        licenses=current.licenses if licenses is None else licenses,
        billing_period=current.billing_period if billing_period is None else billing_period,
    )
    _validate(proposed, plan_ranks)
    if proposed.licenses < assigned_licenses:
        raise ChangeRefused(
            "licenses_in_use",
            f"{assigned_licenses} licenses are assigned to users; unassign some before "
            f"reducing to {proposed.licenses}.",
            assigned=assigned_licenses,
        )
    kinds = _change_kinds(current, proposed, plan_ranks)
    if not kinds:
        raise ChangeRefused("no_change", "The request does not change the subscription.")
    return proposed, kinds


def assess_new_subscription(
    *, plan: str, licenses: int, billing_period: str, plan_ranks: Mapping[str, int]
) -> tuple[Terms, tuple[str, ...]]:
    terms = Terms(plan, licenses, billing_period)
    _validate(terms, plan_ranks)
    return terms, (NEW_SUBSCRIPTION,)


def _validate(terms: Terms, plan_ranks: Mapping[str, int]) -> None:
    if terms.plan not in plan_ranks:
        raise ChangeRefused("unknown_plan", f"The product has no plan {terms.plan!r}.")
    if terms.billing_period not in BILLING_PERIODS:
        raise ChangeRefused(
            "invalid_billing_period",
            f"The billing period must be one of {', '.join(BILLING_PERIODS)}.",
        )
    if terms.licenses < 1:
        raise ChangeRefused("invalid_licenses", "A subscription needs at least one license.")


def _change_kinds(
    current: Terms, proposed: Terms, plan_ranks: Mapping[str, int]
) -> tuple[str, ...]:
    found = set()
    if proposed.plan != current.plan:
        current_rank = plan_ranks.get(current.plan)
        # A plan that is not clearly higher (equal rank, or the old plan left the catalog)
        # counts as a downgrade, so that a person looks at it rather than a machine.
        if current_rank is not None and plan_ranks[proposed.plan] > current_rank:
            found.add("plan_upgrade")
        else:
            found.add("plan_downgrade")
    if proposed.licenses > current.licenses:
        found.add("licenses_added")
    elif proposed.licenses < current.licenses:
        found.add("licenses_removed")
    if proposed.billing_period != current.billing_period:
        found.add("billing_period_changed")
    return tuple(kind for kind in CHANGE_KINDS if kind in found)
