"""Demo data for `make run`: a catalog, a self-serve tenant and an enterprise tenant."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from gateway import clock
from gateway.auth.signing import create_client, mint
from gateway.services import admin
from tenants.models import Account, Advisor, Contact, Subscription, Tenant

PRICES = {  # plan: {currency: (monthly, annual)}
    "free": {"EUR": ("0", "0"), "USD": ("0", "0"), "GBP": ("0", "0")},
    "lite": {"EUR": ("19", "190"), "USD": ("19", "190"), "GBP": ("17", "170")},
    "standard": {"EUR": ("29", "290"), "USD": ("29", "290"), "GBP": ("25", "250")},
    "business": {"EUR": ("49", "490"), "USD": ("49", "490"), "GBP": ("42", "420")},
}
# Demo slugs say so, leaving plain names such as "acme" free for real tenants.
ACME, GLOBEX = "demo-acme", "demo-globex"
CONTACT = "alice@acme.example"
ADVISOR = "victor@advisors.example"
POOL_ADVISOR = "paula@advisors.example"
GLOBEX_CONTACT = "gina@globex.example"
USER_CONTACT = "uma@acme.example"  # a member of Acme GmbH who is not a billing contact
TRIAL_CONTACT = "lars@acme-labs.example"
POOL = "corporate-account-services"
WAITING_KEY = "demo-waiting-case"


def dev_issuer(app) -> dict:
    return {"issuer": app.config["ISSUER"] + "/dev-issuer", "audience": app.config["AUDIENCE"],
            "jwks": app.extensions["gateway.dev_jwks"], "web_client": dev_web_client(app)}


def dev_web_client(app) -> dict:
    """The pages' client at the development issuer; its secret follows the issuer's key, so
    seeding again changes nothing."""
    import hashlib

    pem = app.extensions["gateway.dev_key"].as_pem(private=True)
    return {"client_id": "gateway-pages",
            "client_secret": hashlib.sha256(b"gateway-pages-client|" + pem).hexdigest()}


def dev_token(app, subject: str, ttl: int = 3600) -> str:
    return mint(app.extensions["gateway.dev_key"], issuer=app.config["ISSUER"] + "/dev-issuer",
                audience=app.config["AUDIENCE"], subject=subject, ttl=ttl)


def seed(app) -> dict:
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        with app.app_context():
            return _seed(app, db)
    finally:
        db.close()


def _seed(app, db) -> dict:
    admin.put_product(db, "webinar", {"name": "GoTo Webinar", "plans": [
        {"code": code, "name": code.title(), "rank": rank, "prices": [
            {"currency": cur, "billing_period": period, "unit_amount": Decimal(amounts[i])}
            for cur, amounts in PRICES[code].items()
            for i, period in enumerate(("monthly", "annual"))]}
        for rank, code in enumerate(PRICES)]})
    issuer = dev_issuer(app)
    admin.create_staff_issuer(db, issuer)
    today = clock.today()
    acme = db.scalar(select(Tenant).where(Tenant.slug == ACME))
    if acme is None:
        acme = admin.create_tenant(db, {"name": "Acme", "slug": ACME, "issuers": [issuer]})
        account = admin.create_account(db, acme.id, {
            "name": "Acme GmbH", "country": "DE", "currency": "EUR", "billing_channel": "online",
            "payment_terms": "card", "credit_balance": Decimal("10.00")})
        admin.create_contact(db, account, {"subject": CONTACT, "name": "Alice Acme",
                                           "email": CONTACT, "roles": ["billing_contact", "user"]})
        admin.create_user(db, account, {"name": "Uma User", "email": "uma@acme.example"})
        admin.create_subscription(db, account, {
            "product": "webinar", "plan": "standard", "licenses": 5, "billing_period": "monthly",
            "status": "active", "current_period_start": today - timedelta(days=10)})
    globex = db.scalar(select(Tenant).where(Tenant.slug == GLOBEX))
    if globex is None:
        globex = admin.create_tenant(db, {"name": "Globex", "slug": GLOBEX, "issuers": [issuer]})
        advisor = db.scalar(select(Advisor).where(Advisor.subject == ADVISOR))
        if advisor is None:
            admin.create_advisor(db, {"issuer": issuer["issuer"], "subject": ADVISOR,
                                      "name": "Victor Advisor", "email": ADVISOR,
                                      "pool": "corporate-account-services"})
            advisor = db.scalar(select(Advisor).where(Advisor.subject == ADVISOR))
        account = admin.create_account(db, globex.id, {
            "name": "Globex SA", "country": "FR", "currency": "EUR",
            "billing_channel": "corporate", "payment_terms": "invoice",
            "vat_number": "FR40303265045", "advisor_id": advisor.id})
        admin.create_contact(db, account, {"subject": GLOBEX_CONTACT, "name": "Gina Globex",
                                           "email": GLOBEX_CONTACT, "roles": ["billing_contact"]})
        admin.create_subscription(db, account, {
            "product": "webinar", "plan": "business", "licenses": 150, "billing_period": "annual",
            "status": "active", "current_period_start": today - timedelta(days=100)})
    acme_account = db.scalar(select(Account).where(Account.tenant_id == acme.id)
                             .order_by(Account.created_at).limit(1))
    _more_people(db, acme, acme_account, issuer, today)
    _pool_advisor(db, issuer)
    sub = db.scalar(select(Subscription).where(Subscription.account_id == acme_account.id))
    client = create_client(db, "demo", "admin billing read")
    info = {"acme_account": acme_account.id, "acme_subscription": sub.id, "client": client,
            "globex_account": _first_account(db, globex).id}
    db.commit()  # hold no transaction while the order below goes through the API
    info["waiting_order"] = _waiting_case(app, globex)
    return info


def _first_account(db, tenant) -> Account:
    return db.scalar(select(Account).where(Account.tenant_id == tenant.id)
                     .order_by(Account.created_at).limit(1))


def _more_people(db, acme, acme_account, issuer, today) -> None:
    """Each piece on its own, so that seeding an older demo database adds what it lacks."""
    if db.scalar(select(Contact.id).where(Contact.subject == USER_CONTACT)) is None:
        admin.create_contact(db, acme_account, {"subject": USER_CONTACT, "name": "Uma User",
                                                "email": USER_CONTACT, "roles": ["user"]})
    if db.scalar(select(Account.id).where(Account.tenant_id == acme.id,
                                          Account.name == "Acme Labs")) is None:
        labs = admin.create_account(db, acme.id, {
            "name": "Acme Labs", "country": "DE", "currency": "EUR", "billing_channel": "online",
            "payment_terms": "card"})
        admin.create_contact(db, labs, {"subject": TRIAL_CONTACT, "name": "Lars Labs",
                                        "email": TRIAL_CONTACT, "roles": ["billing_contact"]})
        # A free trial that ended: the story of "Subscribe now".
        admin.create_subscription(db, labs, {
            "product": "webinar", "plan": "free", "licenses": 3, "billing_period": "monthly",
            "status": "expired", "current_period_start": today - timedelta(days=45)})


def _pool_advisor(db, issuer) -> None:
    if db.scalar(select(Advisor.id).where(Advisor.subject == POOL_ADVISOR)) is None:
        admin.create_advisor(db, {"issuer": issuer["issuer"], "subject": POOL_ADVISOR,
                                  "name": "Paula Pool", "email": POOL_ADVISOR, "pool": POOL})


def _waiting_case(app, globex) -> str | None:
    """Gina asks to switch Globex to monthly billing: an enterprise period change waits for
    Victor. Placed through the API with a fixed Idempotency-Key, so a second seed replays it."""
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        account = _first_account(db, globex)
        sub = db.scalar(select(Subscription).where(Subscription.account_id == account.id))
        account_id, sub_id, period = account.id, sub.id, sub.billing_period
    finally:
        db.close()
    flipped = "monthly" if period == "annual" else "annual"
    with app.test_client() as http:
        answer = http.post(f"/api/v1/accounts/{account_id}/orders",
                           json={"items": [{"subscription_id": sub_id, "billing_period": flipped}]},
                           headers={"Authorization": f"Bearer {dev_token(app, GLOBEX_CONTACT, 300)}",
                                    "Idempotency-Key": WAITING_KEY})
    if answer.status_code not in (200, 201):
        # e.g. the order was placed before and its subscription has moved on: nothing to add
        return None
    return answer.get_json()["id"]


def seed_and_describe(app, port: int | None = None) -> str:
    info = seed(app)
    base = f"http://127.0.0.1:{port or app.config.get('PORT') or 8000}"
    client = info["client"]
    contact = dev_token(app, CONTACT, 8 * 3600)
    advisor = dev_token(app, ADVISOR, 8 * 3600)
    tokens = {name: dev_token(app, subject, 8 * 3600) for name, subject in (
        ("GLOBEX_CONTACT_TOKEN", GLOBEX_CONTACT), ("USER_CONTACT_TOKEN", USER_CONTACT),
        ("TRIAL_CONTACT_TOKEN", TRIAL_CONTACT), ("POOL_ADVISOR_TOKEN", POOL_ADVISOR))}
    with app.test_request_context():
        service = _service_token(app, client)
    return "\n".join([
        f"Billing gateway demo on {base} (docs: {base}/docs)",
        f"Sign in to the pages: {base}/login?tenant={ACME}  (pick \"Alice Acme — billing contact\";"
        f" advisors: {base}/advisor/login)",
        f"Service client: {json.dumps(client)}",
        f"SERVICE_TOKEN={service}",
        f"CONTACT_TOKEN={contact}   # Alice, billing contact of Acme GmbH ({info['acme_account']})",
        f"ADVISOR_TOKEN={advisor}   # Victor, Globex's dedicated advisor",
        f"GLOBEX_CONTACT_TOKEN={tokens['GLOBEX_CONTACT_TOKEN']}   # Gina, billing contact of "
        f"Globex SA ({info['globex_account']})"
        + (f"; order {info['waiting_order']} waits for Victor" if info["waiting_order"] else ""),
        f"USER_CONTACT_TOKEN={tokens['USER_CONTACT_TOKEN']}   # Uma, a user (not billing) of Acme GmbH",
        f"TRIAL_CONTACT_TOKEN={tokens['TRIAL_CONTACT_TOKEN']}   # Lars, Acme Labs: expired free "
        "trial (subscribe now)",
        f"POOL_ADVISOR_TOKEN={tokens['POOL_ADVISOR_TOKEN']}   # Paula, Corporate Account Services pool",
        "More tokens: flask --app wsgi dev-token SUBJECT",
        "Try:",
        f"  curl -s -H \"Authorization: Bearer $CONTACT_TOKEN\" -H 'Content-Type: application/json' "
        f"-d '{{\"plan\": \"business\", \"licenses\": 8}}' "
        f"{base}/api/v1/subscriptions/{info['acme_subscription']}/quotes",
    ])


def _service_token(app, client: dict) -> str:
    import base64

    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    with app.test_client() as http:
        response = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {basic}"})
        return response.get_json()["access_token"]
