"""Self-serve or enterprise: which way an account's changes are handled (design.md §3.5)."""

from dataclasses import dataclass

DEFAULT_ENTERPRISE_LICENSE_THRESHOLD = 100
SEGMENTS = ("self_serve", "enterprise")


@dataclass(frozen=True)
class Segment:
    segment: str  # "self_serve" | "enterprise"
    reasons: tuple[str, ...]  # the deciding reason first


def classify(
    *,
    billing_channel: str,
    has_advisor: bool,
    payment_terms: str,
    active_licenses: int,
    threshold: int | None = None,
    pinned: str | None = None,
) -> Segment:
    if pinned is not None:
        if pinned not in SEGMENTS:
            raise ValueError(f"unknown segment {pinned!r}")
        return Segment(pinned, ("segment pinned by tenant policy",))
    if threshold is None:
        threshold = DEFAULT_ENTERPRISE_LICENSE_THRESHOLD
    # In rule order, so the first match (the one that decides) leads; the rest are shown
    # too, so support sees that dropping one criterion would not change the answer.
    criteria = (
        (billing_channel == "corporate", "managed by a representative (corporate billing channel)"),
        (has_advisor, "a dedicated advisor is assigned"),
        (payment_terms == "invoice", "pays on invoice terms"),
        (
            active_licenses >= threshold,
            f"{active_licenses} active licenses reach the enterprise threshold of {threshold}",
        ),
    )
    reasons = tuple(reason for matches, reason in criteria if matches)
    if reasons:
        return Segment("enterprise", reasons)
    return Segment("self_serve", ("no enterprise criterion applies",))
