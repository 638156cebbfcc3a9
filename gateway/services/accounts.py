"""Account-facing use cases that read or change what an account holds."""

from __future__ import annotations

from sqlalchemy import select

from gateway import clock
from gateway.access import (
    advisor_sees_account,
    load_account,
    principal,
    require_scope,
    visible_account_ids,
)
from gateway.errors import not_found
from gateway.services import admin, views
from tenants.catalog import Catalog
from tenants.models import Account, Subscription, Tenant


def account_view(db, account: Account) -> dict:
    tenant = db.get(Tenant, account.tenant_id)
    return views.account(account, tenant, account.active_licenses, clock.today())


def visible_tenant(db, tenant_id: str, need: str = "read") -> Tenant:
    """The tenant if the caller sees it (else 404, as for accounts), then the right `need`."""
    visible = visible_account_ids()
    tenants = None
    if visible is not None:
        tenants = frozenset(db.scalars(select(Account.tenant_id).where(Account.id.in_(visible))))
    row = admin.get_tenant(db, tenant_id, tenants)
    if need == "admin":
        require_scope("admin")
    return row


def patch_tenant(db, tenant_id: str, data: dict) -> Tenant:
    visible_tenant(db, tenant_id, "admin")
    return admin.patch_tenant(db, tenant_id, data)


def list_for_tenant(db, tenant_id: str) -> list[dict]:
    visible_tenant(db, tenant_id)
    visible = visible_account_ids()
    return [account_view(db, a) for a in admin.list_accounts(db, tenant_id)
            if visible is None or a.id in visible]


def create(db, tenant_id: str, data: dict) -> dict:
    visible_tenant(db, tenant_id, "admin")
    return account_view(db, admin.create_account(db, tenant_id, data))


def read(db, account_id: str) -> dict:
    if principal().kind == "advisor":  # the accounts of the cases the advisor can see
        account = db.get(Account, account_id) if advisor_sees_account(db, account_id) else None
        if account is None:
            raise not_found("account")
        return account_view(db, account)
    return account_view(db, load_account(db, account_id))


def subscription_view(db, sub: Subscription, account: Account) -> dict:
    price = Catalog.load(db, sub.product).price(sub.plan, account.currency, sub.billing_period)
    return views.subscription(sub, account.currency, price)


def load_subscription(db, subscription_id: str, need: str = "read",
                      who=None) -> tuple[Subscription, Account]:
    sub = db.get(Subscription, subscription_id)
    p = who or principal()
    if sub is None or (p.kind != "service" and sub.account_id not in p.memberships):
        raise not_found("subscription")
    return sub, load_account(db, sub.account_id, need, p)


def list_subscriptions(db, account_id: str) -> list[dict]:
    account = load_account(db, account_id)
    return [subscription_view(db, s, account) for s in admin.list_subscriptions(db, account)]


def read_subscription(db, subscription_id: str) -> dict:
    sub, account = load_subscription(db, subscription_id)
    return subscription_view(db, sub, account)


def add_user(db, account_id: str, data: dict):
    """A user who can hold a license: added by an admin service, or by the account's billing
    contact (who assigns the licenses, so must be able to name the people who get them)."""
    need = "admin" if principal().kind == "service" else "bill"
    return admin.create_user(db, load_account(db, account_id, need), data)
