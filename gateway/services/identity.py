"""What the caller's token says about it."""

from __future__ import annotations

from sqlalchemy import select

from gateway.auth.principal import Principal
from tenants.models import Account


def me(db, p: Principal) -> dict:
    accounts = []
    if p.memberships:
        rows = db.execute(select(Account.id, Account.name, Account.tenant_id)
                          .where(Account.id.in_(p.memberships)).order_by(Account.name)).all()
        accounts = [{"account_id": i, "name": n, "tenant_id": t,
                     "roles": sorted(p.memberships[i])} for i, n, t in rows]
    advisor = None
    if p.advisor is not None:
        advisor = {"id": p.advisor.id, "name": p.advisor.name, "pool": p.advisor.pool}
    return {"kind": p.kind, "issuer": p.issuer, "subject": p.subject, "client_id": p.client_id,
            "scopes": sorted(p.scopes), "accounts": accounts, "advisor": advisor}
