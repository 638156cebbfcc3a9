"""Administration use cases: catalog, tenants and issuers, accounts, people, subscriptions."""

from __future__ import annotations

import re
from decimal import Decimal

from sqlalchemy import select

from gateway.errors import GatewayError, not_found
from gateway.services import vat_numbers
from routing.periods import add_period
from tenants.catalog import Catalog
from tenants.models import (
    Account,
    Advisor,
    Contact,
    Issuer,
    Membership,
    Plan,
    Price,
    Product,
    Subscription,
    Tenant,
    User,
)
from tenants.vat_numbers import InvalidVatNumber, parse

# -- catalog ---------------------------------------------------------------------------------
PRODUCT_CODE = re.compile(r"[a-z0-9_-]{1,60}")


def put_product(db, code: str, data: dict) -> Product:
    if not PRODUCT_CODE.fullmatch(code):
        raise GatewayError(422, "invalid_product_code",
                           "A product code is 1-60 of a-z, 0-9, '_' and '-'.",
                           errors={"code": ["1-60 of a-z, 0-9, '_' and '-'"]})
    row = db.get(Product, code)
    _refuse_removing_live_prices(db, code, data)
    if row is None:
        row = Product(code=code, name=data["name"])
        db.add(row)
    row.name = data["name"]
    row.plans.clear()
    db.flush()
    for p in data["plans"]:
        row.plans.append(Plan(code=p["code"], name=p["name"], rank=p["rank"], prices=[
            Price(currency=x["currency"], billing_period=x["billing_period"],
                  unit_amount=Decimal(x["unit_amount"])) for x in p["prices"]]))
    db.commit()
    return row


LIVE_STATUSES = ("trial", "active")


def _refuse_removing_live_prices(db, code: str, data: dict) -> None:
    """A live subscription must stay priceable: its plan, and its price in its account's
    currency and billing period, must survive the replacement."""
    kept = {(p["code"], x["currency"], x["billing_period"]) for p in data["plans"] for x in p["prices"]}
    plans = {p["code"] for p in data["plans"]}
    used = db.execute(select(Subscription.plan, Account.currency, Subscription.billing_period)
                      .join(Account, Account.id == Subscription.account_id)
                      .where(Subscription.product == code, Subscription.status.in_(LIVE_STATUSES))
                      .distinct()).all()
    lost = sorted({plan for plan, currency, period in used
                   if plan not in plans or (plan, currency, period) not in kept})
    if lost:
        raise GatewayError(409, "plan_in_use",
                           "Live subscriptions use " + ", ".join(lost)
                           + ": keep these plans and their prices.", plans=lost)


def get_product(db, code: str) -> Product:
    row = db.get(Product, code)
    if row is None:
        raise not_found("product")
    return row


def list_products(db) -> list[Product]:
    return list(db.scalars(select(Product).order_by(Product.code)))


# -- issuers ---------------------------------------------------------------------------------
def ensure_issuer(db, spec: dict, *, staff: bool = False) -> Issuer:
    """Reuse a known issuer with the same settings; other settings for the same URL conflict."""
    row = db.scalar(select(Issuer).where(Issuer.url == spec["issuer"]))
    wanted = (spec["audience"], spec.get("jwks_uri"), spec.get("jwks"),
              spec.get("allow_jwt_typ", False))
    if row is not None:
        if (row.audience, row.jwks_uri, row.jwks, row.allow_jwt_typ) != wanted:
            raise GatewayError(409, "issuer_conflict",
                               f"Issuer {spec['issuer']} is already known with other settings.")
        row.staff = row.staff or staff
        _set_web_client(row, spec)
        return row
    _check_keys(spec)
    row = Issuer(url=spec["issuer"], audience=spec["audience"], jwks_uri=spec.get("jwks_uri"),
                 jwks=spec.get("jwks"), allow_jwt_typ=spec.get("allow_jwt_typ", False),
                 staff=staff)
    _set_web_client(row, spec)
    db.add(row)
    db.flush()
    return row


def _set_web_client(row: Issuer, spec: dict) -> None:
    # Not part of the sameness test above: naming the issuer again with a web client sets it
    # (an admin registers the gateway at the IdP after the tenant already trusts it).
    if spec.get("web_client"):
        row.web_client_id = spec["web_client"]["client_id"]
        row.web_client_secret = spec["web_client"]["client_secret"]


def _check_keys(spec: dict) -> None:
    if not spec.get("jwks"):
        return
    from joserfc.jwk import KeySet

    try:
        keys = KeySet.import_key_set(spec["jwks"])
    except Exception as exc:  # joserfc raises several types for a bad key
        raise GatewayError(422, "invalid_jwks", f"The inline JWKS is not usable: {exc}",
                           errors={"jwks": ["not a usable JSON Web Key Set"]}) from exc
    if any(k.is_private for k in keys.keys):
        raise GatewayError(422, "invalid_jwks", "Give public keys only.",
                           errors={"jwks": ["contains a private key"]})


def create_staff_issuer(db, spec: dict) -> Issuer:
    row = ensure_issuer(db, spec, staff=True)
    db.commit()
    return row


def find_issuer_by_url(db, url: str) -> Issuer | None:
    return db.scalar(select(Issuer).where(Issuer.url == url))


# -- tenants ---------------------------------------------------------------------------------
def create_tenant(db, data: dict) -> Tenant:
    if db.scalar(select(Tenant.id).where(Tenant.slug == data["slug"])):
        raise GatewayError(409, "slug_taken", f"A tenant with slug {data['slug']!r} exists.")
    row = Tenant(name=data["name"], slug=data["slug"])
    _apply_policy(row, data.get("policy") or {})
    row.issuers = _issuers(db, data.get("issuers", []))
    db.add(row)
    db.commit()
    return row


def _issuers(db, specs) -> list[Issuer]:
    rows = []
    for spec in specs:
        issuer = ensure_issuer(db, spec)
        if issuer not in rows:
            rows.append(issuer)
    return rows


def _apply_policy(row: Tenant, policy: dict) -> None:
    for key in ("enterprise_license_threshold", "segment", "require_vat_number",
                "advisor_rules", "case_due_hours", "require_po_number", "locale"):
        if key in policy:
            setattr(row, key, policy[key])


def get_tenant(db, tenant_id: str, visible: frozenset[str] | None) -> Tenant:
    row = db.get(Tenant, tenant_id)
    if row is None or (visible is not None and tenant_id not in visible):
        raise not_found("tenant")
    return row


def patch_tenant(db, tenant_id: str, data: dict) -> Tenant:
    row = get_tenant(db, tenant_id, None)
    if "name" in data:
        row.name = data["name"]
    if "issuers" in data:
        issuers = _issuers(db, data["issuers"])
        _refuse_dropping_used_issuers(db, row, {i.id for i in issuers})
        row.issuers = issuers
    _apply_policy(row, data.get("policy") or {})
    db.commit()
    return row


def _refuse_dropping_used_issuers(db, tenant: Tenant, keep: set[str]) -> None:
    """Contacts sign in through their issuer: dropping it would lock them out silently."""
    used = db.scalars(select(Issuer.url).join(Contact, Contact.issuer_id == Issuer.id)
                      .where(Contact.tenant_id == tenant.id, Issuer.id.not_in(keep))
                      .distinct().order_by(Issuer.url)).all()
    if used:
        raise GatewayError(409, "issuer_in_use",
                           "Contacts of this tenant sign in through " + ", ".join(used)
                           + ": keep these issuers.", issuers=list(used))


def list_tenants(db) -> list[Tenant]:
    return list(db.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


# -- accounts --------------------------------------------------------------------------------
def create_account(db, tenant_id: str, data: dict) -> Account:
    get_tenant(db, tenant_id, None)
    parsed = vat_status = None
    if data.get("vat_number"):
        parsed = _vat(data["vat_number"], data["country"])
        db.commit()  # no transaction held while the registry answers
        vat_status = vat_numbers.verify(parsed)
    if data.get("advisor_id") and db.get(Advisor, data["advisor_id"]) is None:
        raise GatewayError(422, "unknown_advisor", "No such advisor.",
                           errors={"advisor_id": ["unknown advisor"]})
    row = Account(tenant_id=tenant_id, name=data["name"], country=data["country"],
                  currency=data["currency"], billing_channel=data["billing_channel"],
                  payment_terms=data["payment_terms"], vat_number=None,
                  credit_balance=Decimal(data.get("credit_balance") or 0),
                  advisor_id=data.get("advisor_id"))
    if parsed is not None:
        vat_numbers.store(row, parsed, vat_status)
    db.add(row)
    db.commit()
    return row


def _vat(raw: str, country: str):
    try:
        return parse(raw, country)
    except InvalidVatNumber as exc:
        raise GatewayError(422, "invalid_vat_number", str(exc),
                           errors={"vat_number": [str(exc)]}) from exc


def list_accounts(db, tenant_id: str) -> list[Account]:
    return list(db.scalars(select(Account).where(Account.tenant_id == tenant_id)
                           .order_by(Account.created_at, Account.id)))


def set_vat_number(db, account: Account, raw: str) -> dict:
    parsed = _vat(raw, account.country)
    db.commit()  # no transaction held while the registry answers
    status = vat_numbers.verify(parsed)
    account = db.get(Account, account.id, with_for_update=True, populate_existing=True)
    vat_numbers.store(account, parsed, status)
    db.commit()
    return {"vat_number": parsed.number, "country": parsed.country, "valid": True,
            "vat_status": status}


def set_payment_method(db, account: Account, data: dict) -> Account:
    token = data["token"].replace(" ", "").replace("-", "")
    if token.isdigit() and 13 <= len(token) <= 19:
        raise GatewayError(422, "raw_card_data_refused",
                           "Send a payment provider's token, never the card number.",
                           errors={"token": ["looks like a card number"]})
    account.pm_token = data["token"]
    account.pm_brand = data["brand"]
    account.pm_last4 = data["last4"]
    account.pm_exp_month = data["exp_month"]
    account.pm_exp_year = data["exp_year"]
    db.commit()
    return account


# -- contacts, users, advisors ---------------------------------------------------------------
def create_contact(db, account: Account, data: dict) -> dict:
    tenant = db.get(Tenant, account.tenant_id)
    if data.get("issuer"):
        issuer = next((i for i in tenant.issuers if i.url == data["issuer"]), None)
        if issuer is None:
            raise GatewayError(422, "unknown_issuer", "The tenant does not trust that issuer.",
                               errors={"issuer": ["not an issuer of this tenant"]})
    elif len(tenant.issuers) == 1:
        issuer = tenant.issuers[0]
    else:
        raise GatewayError(422, "issuer_required",
                           "The tenant trusts several issuers (or none): name one.",
                           errors={"issuer": ["required"]})
    contact = db.scalar(select(Contact).where(
        Contact.tenant_id == tenant.id, Contact.issuer_id == issuer.id,
        Contact.subject == data["subject"]))
    if contact is None:
        contact = Contact(tenant_id=tenant.id, issuer_id=issuer.id, subject=data["subject"],
                          name=data["name"], email=data["email"])
        db.add(contact)
        db.flush()
    contact.name, contact.email = data["name"], data["email"]
    if "locale" in data:
        contact.locale = data["locale"]
    roles = sorted(set(data["roles"]))
    membership = db.get(Membership, (contact.id, account.id))
    if membership is None:
        db.add(Membership(contact_id=contact.id, account_id=account.id, roles=roles))
    else:
        membership.roles = roles
    db.commit()
    return {"id": contact.id, "tenant_id": tenant.id, "account_id": account.id,
            "issuer": issuer.url, "subject": contact.subject, "name": contact.name,
            "email": contact.email, "roles": roles, "locale": contact.locale}


def create_user(db, account: Account, data: dict) -> User:
    row = User(tenant_id=account.tenant_id, account_id=account.id, name=data["name"],
               email=data["email"])
    db.add(row)
    db.commit()
    return row


def list_users(db, account: Account) -> list[User]:
    return list(db.scalars(select(User).where(User.account_id == account.id)
                           .order_by(User.created_at, User.id)))


def create_advisor(db, data: dict) -> dict:
    issuer = find_issuer_by_url(db, data["issuer"])
    if issuer is None or not issuer.staff:
        raise GatewayError(422, "unknown_issuer", "Register the staff issuer first.",
                           errors={"issuer": ["not a staff issuer"]})
    if db.scalar(select(Advisor.id).where(Advisor.issuer_id == issuer.id,
                                          Advisor.subject == data["subject"])):
        raise GatewayError(409, "advisor_exists", "That advisor is already registered.")
    row = Advisor(issuer_id=issuer.id, subject=data["subject"], name=data["name"],
                  email=data["email"], pool=data["pool"])
    db.add(row)
    db.commit()
    return advisor_view(row, issuer.url)


def advisor_view(row: Advisor, issuer_url: str) -> dict:
    return {"id": row.id, "issuer": issuer_url, "subject": row.subject, "name": row.name,
            "email": row.email, "pool": row.pool}


# -- subscriptions ---------------------------------------------------------------------------
def create_subscription(db, account: Account, data: dict) -> Subscription:
    catalog = Catalog.load(db, data["product"])
    if catalog.product is None:
        raise GatewayError(422, "unknown_product", f"No product {data['product']!r}.",
                           errors={"product": ["unknown product"]})
    if data["plan"] not in catalog.ranks:
        raise GatewayError(422, "unknown_plan", f"No plan {data['plan']!r} in {data['product']}.",
                           errors={"plan": ["unknown plan"]})
    if catalog.price(data["plan"], account.currency, data["billing_period"]) is None:
        # Else the subscription would have no recurring amount and no quote could price it.
        message = (f"The catalog has no {account.currency} price for plan {data['plan']!r} "
                   f"billed {data['billing_period']}.")
        raise GatewayError(422, "price_unavailable", message,
                           errors={"plan": [message], "billing_period": [message]})
    start = data["current_period_start"]
    row = Subscription(tenant_id=account.tenant_id, account_id=account.id,
                       product=data["product"], plan=data["plan"], licenses=data["licenses"],
                       billing_period=data["billing_period"], status=data["status"],
                       current_period_start=start,
                       current_period_end=data.get("current_period_end")
                       or add_period(start, data["billing_period"]))
    db.add(row)
    db.commit()
    return row


def list_subscriptions(db, account: Account) -> list[Subscription]:
    return list(db.scalars(select(Subscription).where(Subscription.account_id == account.id)
                           .order_by(Subscription.created_at, Subscription.id)))
