"""What the customer must provide before a change that raises their rate or charges them
(design.md §3.3, amended)."""

from collections.abc import Iterable
from dataclasses import dataclass

from routing.vat import EU_MEMBER_STATES


@dataclass(frozen=True)
class Requirement:
    type: str  # "payment_method" | "vat_number"
    status: str  # "outstanding" | "satisfied"


def requirements(
    *,
    rate_increase: bool,
    charges: bool = False,
    payment_terms: str,
    has_payment_method: bool,
    country: str,
    vat_number_required_by_policy: bool,
    has_valid_vat_number: bool,
) -> tuple[Requirement, ...]:
    """`charges`: the order has an amount to charge (total_due > 0). A switch from monthly to
    annual lowers the monthly equivalent but charges a year up front: nothing can be charged to
    a card account without a card."""
    found = []
    # Accounts on invoice terms are billed, never charged to a card.
    if payment_terms == "card" and (rate_increase or charges):
        found.append(Requirement("payment_method", _status(has_payment_method)))
    if rate_increase and country in EU_MEMBER_STATES and vat_number_required_by_policy:
        found.append(Requirement("vat_number", _status(has_valid_vat_number)))
    return tuple(found)


def outstanding(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(req for req in reqs if req.status == "outstanding")


def _status(provided: bool) -> str:
    return "satisfied" if provided else "outstanding"
