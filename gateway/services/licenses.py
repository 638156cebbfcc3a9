"""License assignments: who of the account's users holds a seat."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway.errors import GatewayError, not_found
from gateway.services.accounts import load_subscription
from tenants.models import LicenseAssignment, Subscription, User


def assigned_count(db, subscription_id: str) -> int:
    return db.scalar(select(func.count()).select_from(LicenseAssignment)
                     .where(LicenseAssignment.subscription_id == subscription_id)) or 0


def summary(db, subscription_id: str) -> dict:
    sub, _ = load_subscription(db, subscription_id)
    return _summary(db, sub)


def _summary(db, sub: Subscription) -> dict:
    rows = db.scalars(select(LicenseAssignment)
                      .where(LicenseAssignment.subscription_id == sub.id)
                      .order_by(LicenseAssignment.assigned_at)).all()
    return {"subscription_id": sub.id, "total": sub.licenses, "assigned": len(rows),
            "unassigned": max(0, sub.licenses - len(rows)),
            "assignments": [{"user_id": r.user_id, "assigned_at": r.assigned_at} for r in rows]}


def assign(db, subscription_id: str, user_id: str) -> dict:
    sub, _ = load_subscription(db, subscription_id, "bill")
    if db.get(Subscription, sub.id, with_for_update=True) is None:
        raise not_found("subscription")
    user = db.get(User, user_id)
    if user is None or user.account_id != sub.account_id:
        raise GatewayError(422, "unknown_user", "No such user on this account.",
                           errors={"user_id": ["unknown user"]})
    if db.get(LicenseAssignment, (sub.id, user_id)) is not None:
        raise GatewayError(409, "already_assigned", "That user already holds a license.")
    if assigned_count(db, sub.id) >= sub.licenses:
        raise GatewayError(409, "no_license_available",
                           "Every license is assigned; add licenses or unassign one first.")
    row = LicenseAssignment(subscription_id=sub.id, user_id=user_id)
    db.add(row)
    db.commit()
    return {"subscription_id": sub.id, "user_id": user_id, "assigned_at": row.assigned_at}


def unassign(db, subscription_id: str, user_id: str) -> None:
    sub, _ = load_subscription(db, subscription_id, "bill")
    row = db.get(LicenseAssignment, (sub.id, user_id))
    if row is None:
        raise not_found("license assignment")
    db.delete(row)
    db.commit()
