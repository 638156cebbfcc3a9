"""Who may do what: scopes for services, memberships for contacts, registration for advisors."""

from __future__ import annotations

from flask import g
from sqlalchemy import or_, select

from adapters.models import AdvisorCase
from gateway import logs
from gateway.auth.principal import Principal
from gateway.errors import GatewayError, not_found
from tenants.models import Account, Contact, Membership

READ_SCOPES = frozenset({"read", "admin", "billing"})


def principal() -> Principal:
    return g.principal


def insufficient_scope(needed: str) -> GatewayError:
    return GatewayError(403, "insufficient_scope", f"This needs a service token with scope {needed!r}.")


def require_scope(scope: str) -> Principal:
    p = principal()
    if p.kind != "service" or scope not in p.scopes:
        raise insufficient_scope(scope)
    return p


def require_any_scope(scopes: frozenset[str], label: str) -> Principal:
    p = principal()
    if p.kind != "service" or not (p.scopes & scopes):
        raise insufficient_scope(label)
    return p


def require_advisor() -> Principal:
    p = principal()
    if p.kind != "advisor" or p.advisor is None:
        raise GatewayError(403, "not_an_advisor", "This needs a registered advisor's token.")
    return p


def visible_account_ids() -> frozenset[str] | None:
    """None: every account (services); else the contact's own accounts."""
    p = principal()
    if p.kind == "service" and p.scopes & READ_SCOPES:
        return None
    return frozenset(p.memberships)


_FETCH = object()


def load_account(db, account_id: str, need: str = "read", who: Principal | None = None,
                 loaded=_FETCH) -> Account:
    """The account, if the caller may `need` ("read" | "bill" | "admin") it; 404 if invisible.
    `who` is the caller (use cases pass theirs; else the request's); `loaded`, the row if the
    use case read it already (None: it does not exist)."""
    p = who or principal()
    check_rights(db, p, account_id, need)
    account = db.get(Account, account_id) if loaded is _FETCH else loaded
    if account is None:
        raise not_found("account")
    logs.note_tenant(account.tenant_id)
    return account


def check_rights(db, p: Principal, account_id: str, need: str) -> None:
    """What the caller's token alone decides (no query unless refusing a non-billing contact)."""
    if p.kind == "service":
        wanted = {"read": READ_SCOPES, "bill": frozenset({"billing"}),
                  "admin": frozenset({"admin"})}[need]
        if not p.scopes & wanted:
            raise insufficient_scope("read" if need == "read" else
                                     "billing" if need == "bill" else "admin")
        return
    if p.kind != "contact" or account_id not in p.memberships:
        raise not_found("account")
    if need == "read":
        return
    if need == "bill" and "billing_contact" in p.roles_on(account_id):
        return
    if need == "admin":
        raise insufficient_scope("admin")
    raise GatewayError(
        403, "not_billing_contact",
        "Only a billing contact of this account can change its subscriptions.",
        billing_contacts=billing_contacts(db, account_id),
    )


def billing_contacts(db, account_id: str) -> list[dict]:
    rows = db.execute(
        select(Contact.name, Contact.email, Membership.roles)
        .join(Membership, Membership.contact_id == Contact.id)
        .where(Membership.account_id == account_id)
        .order_by(Contact.name)
    ).all()
    return [{"name": n, "email": e} for n, e, roles in rows if "billing_contact" in (roles or ())]


def cases_visible_to(advisor):
    """The cases of the accounts the advisor is dedicated to, and every case of their pool
    (a dedicated advisor's cases included: the pool sees them, and takes them once overdue)."""
    return or_(AdvisorCase.assigned_advisor_id == advisor.id, AdvisorCase.pool == advisor.pool)


def advisor_sees_account(db, account_id: str) -> bool:
    """An advisor reads the accounts (and their orders) of the cases they can see, nothing else."""
    p = principal()
    if p.kind != "advisor" or p.advisor is None:
        return False
    return db.scalar(select(AdvisorCase.id).where(AdvisorCase.account_id == account_id,
                                                  cases_visible_to(p.advisor)).limit(1)) is not None
