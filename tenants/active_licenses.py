"""`accounts.active_licenses` follows every ORM change to a subscription.

After each flush, the licenses a subscription stopped or started counting (new, changed
licenses or status, moved, deleted) are added to its account's count in one UPDATE per
account, as a delta: two transactions changing one account's subscriptions both land, and no
flush reads the account's other subscriptions. A Core statement that writes subscriptions
bypasses this and must move the count itself (the bulk apply in gateway.orders.lifecycle does).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import event, update
from sqlalchemy.orm import Session, attributes
from sqlalchemy.orm.attributes import set_committed_value

from tenants.models import Account, Subscription

COUNTED = "active"


def counted(status: str | None, licenses: int | None) -> int:
    return (licenses or 0) if status == COUNTED else 0


def _before_and_after(sub: Subscription) -> tuple[tuple, tuple]:
    """((account, status, licenses) as stored, the same as it will be stored)."""
    old, new = [], []
    for key in ("account_id", "status", "licenses"):
        h = attributes.get_history(sub, key)
        old.append((h.deleted or h.unchanged or [None])[0])
        new.append((h.added or h.unchanged or [None])[0])
    return tuple(old), tuple(new)


@event.listens_for(Session, "after_flush")
def _count(session: Session, _ctx) -> None:
    deltas: dict[str, int] = defaultdict(int)
    for sub in session.new:
        if isinstance(sub, Subscription):
            deltas[sub.account_id] += counted(sub.status, sub.licenses)
    for sub in session.dirty:
        if isinstance(sub, Subscription) and session.is_modified(sub):
            (old_acc, old_status, old_n), (acc, status, n) = _before_and_after(sub)
            deltas[old_acc] -= counted(old_status, old_n)
            deltas[acc] += counted(status, n)
    for sub in session.deleted:
        if isinstance(sub, Subscription):
            (old_acc, old_status, old_n), _ = _before_and_after(sub)
            deltas[old_acc] -= counted(old_status, old_n)
    for account_id, delta in deltas.items():
        if delta and account_id:
            move(session, account_id, delta)


def move(session: Session, account_id: str, delta: int) -> None:
    """Adds `delta` to the account's count; its copy in the session (if any) follows."""
    total = session.connection().execute(
        update(Account).where(Account.id == account_id)
        .values(active_licenses=Account.active_licenses + delta)
        .returning(Account.active_licenses)).scalar()
    account = session.identity_map.get(session.identity_key(Account, account_id))
    if account is not None and total is not None:
        set_committed_value(account, "active_licenses", total)
