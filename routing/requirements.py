"""What the customer must provide before a change that raises their rate (design.md §3.3)."""

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
    payment_terms: str,
    has_payment_method: bool,
    country: str,
    vat_number_required_by_policy: bool,
    has_valid_vat_number: bool,
) -> tuple[Requirement, ...]:
    if not rate_increase:
        return ()
    found = []
    # Accounts on invoice terms are billed, never charged to a card.
    if payment_terms == "card":
        found.append(Requirement("payment_method", _status(has_payment_method)))
    if country in EU_MEMBER_STATES and vat_number_required_by_policy:
        found.append(Requirement("vat_number", _status(has_valid_vat_number)))
    return tuple(found)


def outstanding(reqs: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(req for req in reqs if req.status == "outstanding")


def _status(provided: bool) -> str:
    return "satisfied" if provided else "outstanding"
