"""The HTTP contract of api.md and the exact rules of design.md §3, checked from the outside.

One gateway is served on loopback by werkzeug's threaded server (clock frozen at 2026-03-10)
and driven with `requests`, as an outside acceptance suite would: real RS256 at+jwt tokens for
contacts and advisors, service tokens from `/oauth/token`. Each test builds its own tenants;
the amounts below are worked out by hand in the comments beside them.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import pytest
import requests
from werkzeug.serving import make_server

from tests import conftest
from tests.conftest import TestIssuer, build_app

TODAY = "2026-03-10"
MONEY2 = re.compile(r"^-?\d+\.\d{2}$")
MONEY0 = re.compile(r"^-?\d+$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)$")
ERROR_KEYS = {"code", "status", "error", "message"}
CARD = {"token": "pm_tok_contract", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2099}

# Per-license prices; "addon" has a price whose VAT rounds differently per item and on the sum.
PRODUCT = {"name": "Meetings", "plans": [
    {"code": "free", "name": "Free", "rank": 0, "prices": [
        {"currency": c, "billing_period": p, "unit_amount": "0"}
        for c in ("EUR", "USD", "CHF", "JPY") for p in ("monthly", "annual")]},
    {"code": "lite", "name": "Lite", "rank": 1, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "19.00"},
        {"currency": "USD", "billing_period": "monthly", "unit_amount": "19.00"},
        {"currency": "JPY", "billing_period": "monthly", "unit_amount": "2000"}]},
    {"code": "standard", "name": "Standard", "rank": 2, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "29.00"},
        {"currency": "EUR", "billing_period": "annual", "unit_amount": "290.00"},
        {"currency": "USD", "billing_period": "monthly", "unit_amount": "29.00"},
        {"currency": "CHF", "billing_period": "monthly", "unit_amount": "28.00"},
        {"currency": "JPY", "billing_period": "monthly", "unit_amount": "3000"}]},
    {"code": "business", "name": "Business", "rank": 3, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "49.00"},
        {"currency": "EUR", "billing_period": "annual", "unit_amount": "490.00"},
        {"currency": "USD", "billing_period": "monthly", "unit_amount": "49.00"},
        {"currency": "USD", "billing_period": "annual", "unit_amount": "490.00"},
        {"currency": "CHF", "billing_period": "monthly", "unit_amount": "48.00"},
        {"currency": "CHF", "billing_period": "annual", "unit_amount": "480.00"},
        {"currency": "JPY", "billing_period": "monthly", "unit_amount": "4999"}]},
]}
ADDON = {"name": "Add-on", "plans": [
    {"code": "basic", "name": "Basic", "rank": 0, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "1.00"}]},
    {"code": "pro", "name": "Pro", "rank": 1, "prices": [
        {"currency": "EUR", "billing_period": "monthly", "unit_amount": "10.03"}]},
]}


# -- the gateway on loopback, and an HTTP client ---------------------------------------------
class Client:
    """`requests` against the served gateway, with an optional bearer token."""

    def __init__(self, base: str, token: str | None = None):
        self.base = base
        self.token = token
        self.session = requests.Session()

    def as_(self, token: str | None) -> Client:
        return Client(self.base, token)

    def call(self, method: str, path: str, json=None, headers=None, **kw) -> requests.Response:
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return self.session.request(method, self.base + path, json=json, headers=h, timeout=30, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.call("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@dataclass
class Gateway:
    app: object
    base: str
    anon: Client
    admin: Client
    issuer: TestIssuer  # the customers' IdP, trusted by every tenant made here
    staff: TestIssuer  # the vendor's staff IdP

    def service(self, scopes: str) -> Client:
        return self.anon.as_(service_token(self, scopes))

    def contact(self, subject: str) -> Client:
        return self.anon.as_(self.issuer.token(subject))


def client_credentials(gw_app, scopes: str) -> dict:
    from gateway.auth.signing import create_client

    with gw_app.app_context():
        db = gw_app.extensions["gateway.db"].sessionmaker()
        try:
            return create_client(db, f"contract {scopes}", scopes)
        finally:
            db.close()


def service_token(gw: Gateway, scopes: str) -> str:
    creds = client_credentials(gw.app, scopes)
    r = requests.post(gw.base + "/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(creds["client_id"], creds["client_secret"]), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("contract")
    app = build_app(f"sqlite:///{tmp / 'gateway.db'}", tmp, FROZEN_TODAY=TODAY)
    # This app serves the whole module: the per-test clean-up must not stop its queue.
    conftest._apps.remove(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="contract-http", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    anon = Client(base)
    gateway = Gateway(app, base, anon, anon, TestIssuer.new("contract"), TestIssuer.new("staff"))
    gateway.admin = gateway.service("admin billing read")
    for code, product in (("meetings", PRODUCT), ("addon", ADDON)):
        r = gateway.admin.put(f"/api/v1/catalog/products/{code}", json=product)
        assert r.status_code == 200, r.text
    r = gateway.admin.post("/api/v1/staff-issuers", json=gateway.staff.spec())
    assert r.status_code == 201, r.text
    try:
        yield gateway
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        app.extensions["gateway.queue"].stop()
        app.extensions["gateway.db"].dispose()


# -- worlds ----------------------------------------------------------------------------------
_seq = iter(range(10**6))


@dataclass
class World:
    tenant_id: str
    account_id: str
    subscription_id: str
    billing: Client  # a billing contact
    member: Client  # a contact with the role "user" only
    billing_email: str


def world(gw: Gateway, *, country="DE", currency="EUR", channel="online", terms="card",
          product="meetings", plan="standard", licenses=5, period="monthly", start="2026-02-20",
          end=None, status="active", vat_number=None, balance=None, policy=None,
          advisor_id=None) -> World:
    n = next(_seq)
    slug = f"t{n}-{country.lower()}"
    r = gw.admin.post("/api/v1/tenants", json={"name": f"Tenant {n}", "slug": slug,
                                               "issuers": [gw.issuer.spec()], "policy": policy or {}})
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    body = {"name": f"Account {n}", "country": country, "currency": currency,
            "billing_channel": channel, "payment_terms": terms}
    for key, value in (("vat_number", vat_number), ("credit_balance", balance),
                       ("advisor_id", advisor_id)):
        if value is not None:
            body[key] = value
    r = gw.admin.post(f"/api/v1/tenants/{tenant_id}/accounts", json=body)
    assert r.status_code == 201, r.text
    account_id = r.json()["id"]
    for role in ("billing_contact", "user"):
        r = gw.admin.post(f"/api/v1/accounts/{account_id}/contacts", json={
            "subject": f"{role}-{n}", "name": f"{role.title()} {n}",
            "email": f"{role}.{n}@customer.example", "roles": [role]})
        assert r.status_code == 201, r.text
    sub = {"product": product, "plan": plan, "licenses": licenses, "billing_period": period,
           "status": status, "current_period_start": start}
    if end:
        sub["current_period_end"] = end
    r = gw.admin.post(f"/api/v1/accounts/{account_id}/subscriptions", json=sub)
    assert r.status_code == 201, r.text
    return World(tenant_id, account_id, r.json()["id"], gw.contact(f"billing_contact-{n}"),
                 gw.contact(f"user-{n}"), f"billing_contact.{n}@customer.example")


def add_subscription(gw: Gateway, w: World, **kw) -> str:
    body = {"product": "meetings", "plan": "standard", "licenses": 1, "billing_period": "monthly",
            "status": "active", "current_period_start": "2026-03-01"}
    body.update(kw)
    r = gw.admin.post(f"/api/v1/accounts/{w.account_id}/subscriptions", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def licenses_url(w: World) -> str:
    return f"/api/v1/subscriptions/{w.subscription_id}/licenses"


def card(w: World) -> None:
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=CARD)
    assert r.status_code == 200, r.text


def quote(w: World, sub_id: str | None = None, **change) -> requests.Response:
    return w.billing.post(f"/api/v1/subscriptions/{sub_id or w.subscription_id}/quotes", json=change)


def order(client: Client, account_id: str, body: dict, key: str) -> requests.Response:
    return client.post(f"/api/v1/accounts/{account_id}/orders", json=body,
                       headers={"Idempotency-Key": key})


def settle(client: Client, order_id: str, until=("completed", "rejected"), timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/api/v1/orders/{order_id}").json()
        if body["status"] in until or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def advisor(gw: Gateway, subject: str, pool: str | None = None) -> tuple[str, Client]:
    body = {"issuer": gw.staff.url, "subject": subject, "name": f"Advisor {subject}",
            "email": f"{subject}@vendor.example"}
    if pool:
        body["pool"] = pool
    r = gw.admin.post("/api/v1/advisors", json=body)
    assert r.status_code == 201, r.text
    assert isinstance(r.json()["id"], str)
    return r.json()["id"], gw.anon.as_(gw.staff.token(subject))


# -- shape checks ----------------------------------------------------------------------------
def is_error(r: requests.Response, status: int, error: str, *extra: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert ERROR_KEYS <= set(body), body
    assert (body["code"], body["error"]) == (status, error), body
    assert isinstance(body["status"], str) and body["status"], body
    assert isinstance(body["message"], str) and body["message"], body
    for key in extra:
        assert key in body, (key, body)
    if status == 422:  # api.md: field -> messages on every 422
        assert isinstance(body.get("errors"), dict) and body["errors"], body
    return body


def money_like(value, currency: str) -> bool:
    return isinstance(value, str) and bool((MONEY0 if currency == "JPY" else MONEY2).match(value))


def check_quote_shape(q: dict) -> None:
    cur = q["currency"]
    for key in ("subscription_id", "currency", "changes", "current", "proposed", "rate_increase",
                "lines", "net", "balance_applied", "credit_added", "tax", "total_due",
                "requirements", "route", "next_action"):
        assert key in q, key
    for side in ("current", "proposed"):
        terms = q[side]
        assert set(terms) >= {"plan", "licenses", "billing_period", "period_start", "period_end",
                              "recurring_amount"}, terms
        assert DATE.match(terms["period_start"]) and DATE.match(terms["period_end"])
        assert money_like(terms["recurring_amount"], cur) and isinstance(terms["licenses"], int)
    assert q["proposed"]["period_start"] == TODAY
    assert isinstance(q["rate_increase"], bool)
    for line in q["lines"]:
        assert set(line) >= {"type", "amount", "description"} and money_like(line["amount"], cur)
    for key in ("net", "balance_applied", "credit_added", "total_due"):
        assert money_like(q[key], cur), (key, q[key])
    tax = q["tax"]
    assert set(tax) >= {"treatment", "country", "rate", "amount", "rates_as_of"}
    assert tax["treatment"] in ("standard", "reverse_charge", "not_applicable")
    assert re.match(r"^\d\.\d{2,}$", tax["rate"]) and DATE.match(tax["rates_as_of"])
    assert money_like(tax["amount"], cur)
    for req in q["requirements"]:
        assert req["type"] in ("payment_method", "vat_number")
        assert req["status"] in ("outstanding", "satisfied")
    assert q["route"]["destination"] in ("billing_center", "corporate_portal", "advisor_queue")
    assert isinstance(q["route"]["reason"], str) and q["route"]["reason"]
    assert q["next_action"] in ("place_order", "add_to_cart", "provide_requirements", "contact_advisor")


def check_order_shape(o: dict) -> None:
    cur = o["currency"]
    for key in ("id", "status", "items", "currency", "net", "balance_applied", "credit_added",
                "tax", "total_due", "created_at", "route"):
        assert key in o, key
    assert isinstance(o["id"], str) and TIMESTAMP.match(o["created_at"]), o
    assert o["status"] in ("processing", "completed", "awaiting_advisor", "awaiting_acceptance",
                           "rejected")
    for item in o["items"]:
        assert set(item) >= {"subscription_id", "changes", "route", "status"}, item
        assert set(item["route"]) >= {"destination", "reason"}
    for key in ("net", "balance_applied", "credit_added", "total_due"):
        assert money_like(o[key], cur), (key, o[key])
    assert money_like(o["tax"]["amount"], cur)
    assert set(o["route"]) >= {"destination", "reason"}


def amounts(body: dict) -> tuple:
    return (body["net"], body["balance_applied"], body["credit_added"], body["tax"]["amount"],
            body["total_due"])


# == conventions: public routes, the door, the error shape =====================================
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs",
                                  "/.well-known/jwks.json"])
def test_public_routes_answer_without_a_token(gw, path):
    assert gw.anon.get(path).status_code == 200


def test_no_token_or_a_bad_one_is_401_with_www_authenticate(gw):
    w = world(gw)
    stranger = TestIssuer.new("stranger")
    for client in (gw.anon, gw.anon.as_("not-a-jwt"), gw.anon.as_(stranger.token("billing_contact-x")),
                   gw.anon.as_(gw.issuer.token("someone", exp=int(time.time()) - 3600))):
        for method, path in (("GET", "/api/v1/me"), ("GET", f"/api/v1/accounts/{w.account_id}"),
                             ("POST", f"/api/v1/subscriptions/{w.subscription_id}/quotes"),
                             ("GET", "/api/v1/events"), ("GET", "/api/v1/advisor/cases")):
            r = client.call(method, path, json={})
            is_error(r, 401, "missing_token" if client.token is None else "invalid_token")
            assert r.headers.get("WWW-Authenticate", "").startswith("Bearer"), (method, path)


def test_oauth_token_and_me(gw):
    creds = client_credentials(gw.app, "read billing")
    # HTTP Basic, with a narrower scope
    r = requests.post(gw.base + "/oauth/token", data={"grant_type": "client_credentials", "scope": "read"},
                      auth=(creds["client_id"], creds["client_secret"]), timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["scope"] == "read"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    # client_secret_post
    r = requests.post(gw.base + "/oauth/token", data={
        "grant_type": "client_credentials", "client_id": creds["client_id"],
        "client_secret": creds["client_secret"]}, timeout=30)
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"read", "billing"}
    me = gw.anon.as_(r.json()["access_token"]).get("/api/v1/me")
    assert me.status_code == 200 and me.json()["kind"] == "service"
    # an RS256 at+jwt, signed with a key published at /.well-known/jwks.json
    token = r.json()["access_token"]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert (header["alg"], header["typ"].lower()) == ("RS256", "at+jwt")
    kids = {k["kid"] for k in gw.anon.get("/.well-known/jwks.json").json()["keys"]}
    assert header["kid"] in kids
    # unknown client and wrong secret: 401 invalid_client
    r = requests.post(gw.base + "/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(creds["client_id"], "wrong"), timeout=30)
    is_error(r, 401, "invalid_client")


def test_me_for_a_contact_and_an_advisor(gw):
    w = world(gw)
    me = w.billing.get("/api/v1/me")
    assert me.status_code == 200
    body = me.json()
    assert body["kind"] == "contact"
    assert [(a["account_id"], a["roles"]) for a in body["accounts"]] == [(w.account_id, ["billing_contact"])]
    _, ada = advisor(gw, f"me-{next(_seq)}")
    assert ada.get("/api/v1/me").json()["kind"] == "advisor"


def test_unknown_body_fields_are_refused_with_422_and_errors(gw):
    w = world(gw)
    card(w)
    cases = [
        (gw.admin, "POST", "/api/v1/tenants", {"name": "X", "slug": f"x{next(_seq)}", "colour": "red"}),
        (gw.admin, "POST", f"/api/v1/tenants/{w.tenant_id}/accounts", {
            "name": "X", "country": "DE", "currency": "EUR", "billing_channel": "online",
            "payment_terms": "card", "nickname": "x"}),
        (gw.admin, "POST", f"/api/v1/accounts/{w.account_id}/users", {"name": "U", "email": "u@x.example",
                                                                     "age": 3}),
        (w.billing, "POST", f"/api/v1/subscriptions/{w.subscription_id}/quotes",
         {"licenses": 6, "coupon": "x"}),
        (w.billing, "POST", f"/api/v1/accounts/{w.account_id}/cart/items", {
            "subscription_id": w.subscription_id, "licenses": 6, "gift": True}),
        (w.billing, "PUT", f"/api/v1/accounts/{w.account_id}/vat-number", {"vat_number": "DE136695976",
                                                                          "x": 1}),
        (w.billing, "PUT", f"/api/v1/accounts/{w.account_id}/payment-method", dict(CARD, pan="4242")),
    ]
    for client, method, path, body in cases:
        r = client.call(method, path, json=body)
        is_error(r, 422, "validation_error", "errors")
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "licenses": 6}],
                                        "rush": True}, "unknown-field")
    is_error(r, 422, "validation_error", "errors")
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "licenses": 6,
                                                   "discount": "10"}]}, "unknown-item-field")
    is_error(r, 422, "validation_error", "errors")


def test_rights_403_and_other_tenants_404(gw):
    a, b = world(gw), world(gw)
    reader, biller = gw.service("read"), gw.service("billing")
    # a valid token without the right: 403
    is_error(reader.post("/api/v1/tenants", json={"name": "X", "slug": f"r{next(_seq)}"}),
             403, "insufficient_scope")
    is_error(reader.post(f"/api/v1/subscriptions/{a.subscription_id}/quotes", json={"licenses": 6}),
             403, "insufficient_scope")
    is_error(biller.get("/api/v1/events"), 403, "insufficient_scope")
    is_error(a.billing.post("/api/v1/tenants", json={"name": "X", "slug": f"c{next(_seq)}"}),
             403, "insufficient_scope")
    is_error(a.billing.get("/api/v1/advisor/cases"), 403, "not_an_advisor")
    is_error(a.billing.get("/api/v1/events"), 403, "insufficient_scope")
    # read reads everything; billing acts on any account's quotes
    assert reader.get(f"/api/v1/accounts/{a.account_id}").status_code == 200
    assert reader.get(f"/api/v1/subscriptions/{a.subscription_id}/licenses").status_code == 200
    assert biller.post(f"/api/v1/subscriptions/{a.subscription_id}/quotes",
                       json={"licenses": 6}).status_code == 200
    # another tenant's objects answer exactly as objects that do not exist
    for path in (f"/api/v1/accounts/{b.account_id}", f"/api/v1/subscriptions/{b.subscription_id}",
                 f"/api/v1/accounts/{b.account_id}/subscriptions", f"/api/v1/accounts/{b.account_id}/orders",
                 f"/api/v1/accounts/{b.account_id}/cart", f"/api/v1/tenants/{b.tenant_id}",
                 f"/api/v1/subscriptions/{b.subscription_id}/licenses",
                 f"/api/v1/accounts/{b.account_id}/portal-quotes", "/api/v1/accounts/acc_nothing"):
        is_error(a.billing.get(path), 404, "not_found")
    is_error(a.billing.post(f"/api/v1/subscriptions/{b.subscription_id}/quotes", json={"licenses": 6}),
             404, "not_found")
    is_error(order(a.billing, b.account_id, {"items": [{"subscription_id": b.subscription_id,
                                                        "licenses": 6}]}, "k"), 404, "not_found")
    # an item naming another account's subscription is not found either
    is_error(order(a.billing, a.account_id, {"items": [{"subscription_id": b.subscription_id,
                                                        "licenses": 6}]}, "k2"), 404, "not_found")


def test_a_contact_who_is_not_a_billing_contact_is_told_whom_to_ask(gw):
    w = world(gw)
    assert w.member.get(f"/api/v1/accounts/{w.account_id}").status_code == 200
    assert w.member.get(f"/api/v1/subscriptions/{w.subscription_id}").status_code == 200
    for r in (w.member.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes", json={"licenses": 6}),
              order(w.member, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                        "licenses": 6}]}, "member"),
              w.member.post(f"/api/v1/accounts/{w.account_id}/cart/items",
                            json={"subscription_id": w.subscription_id, "licenses": 6}),
              w.member.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=CARD),
              w.member.put(f"/api/v1/accounts/{w.account_id}/vat-number",
                           json={"vat_number": "DE136695976"})):
        body = is_error(r, 403, "not_billing_contact", "billing_contacts")
        assert body["billing_contacts"] == [{"name": body["billing_contacts"][0]["name"],
                                             "email": w.billing_email}]
        assert set(body["billing_contacts"][0]) == {"name", "email"}


# == administration and reading ===============================================================
def test_catalog_tenant_account_contact_user_subscription_shapes(gw):
    r = gw.admin.get("/api/v1/catalog/products/meetings")
    assert r.status_code == 200
    plans = {p["code"]: p for p in r.json()["plans"]}
    assert plans["business"]["rank"] == 3
    prices = {(x["currency"], x["billing_period"]): x["unit_amount"] for x in plans["business"]["prices"]}
    assert prices[("EUR", "annual")] == "490.00" and prices[("JPY", "monthly")] == "4999"
    assert "meetings" in [p["code"] for p in gw.admin.get("/api/v1/catalog/products").json()]
    is_error(gw.admin.get("/api/v1/catalog/products/nothing"), 404, "not_found")

    n = next(_seq)
    r = gw.admin.post("/api/v1/tenants", json={
        "name": "Shapes", "slug": f"shapes-{n}", "issuers": [gw.issuer.spec()],
        "policy": {"enterprise_license_threshold": 10, "require_vat_number": False}})
    assert r.status_code == 201, r.text
    tenant = r.json()
    assert isinstance(tenant["id"], str)
    assert gw.admin.get(f"/api/v1/tenants/{tenant['id']}").json()["id"] == tenant["id"]
    r = gw.admin.patch(f"/api/v1/tenants/{tenant['id']}", json={"policy": {"segment": "enterprise"}})
    assert r.status_code == 200
    r = gw.admin.post("/api/v1/tenants", json={"name": "Dup", "slug": f"shapes-{n}"})
    assert r.status_code == 409

    r = gw.admin.post(f"/api/v1/tenants/{tenant['id']}/accounts", json={
        "name": "Shapes GmbH", "country": "DE", "currency": "EUR", "billing_channel": "online",
        "payment_terms": "card", "vat_number": "de 136 695 976", "credit_balance": "12.50"})
    assert r.status_code == 201, r.text
    account = r.json()
    for key in ("id", "segment", "segment_reasons", "credit_balance", "vat_number", "payment_method"):
        assert key in account, key
    assert (account["vat_number"], account["credit_balance"], account["payment_method"]) == (
        "DE136695976", "12.50", None)
    assert account["segment"] == "enterprise" and account["segment_reasons"]  # pinned by policy

    r = gw.admin.post(f"/api/v1/accounts/{account['id']}/contacts", json={
        "subject": f"shape-{n}", "name": "Shape", "email": "shape@x.example", "roles": ["billing_contact"]})
    assert r.status_code == 201, r.text
    r = gw.admin.post(f"/api/v1/accounts/{account['id']}/users", json={"name": "U", "email": "u@x.example"})
    assert r.status_code == 201 and isinstance(r.json()["id"], str)

    r = gw.admin.post(f"/api/v1/accounts/{account['id']}/subscriptions", json={
        "product": "meetings", "plan": "business", "licenses": 3, "billing_period": "annual",
        "status": "active", "current_period_start": "2024-02-29"})
    assert r.status_code == 201, r.text
    sub = r.json()
    want = {"id", "account_id", "product", "plan", "licenses", "billing_period", "status",
            "current_period_start", "current_period_end", "recurring_amount", "currency"}
    assert want <= set(sub)
    # start + 1 year, Feb 29 clamps to Feb 28; recurring is the monthly equivalent 490 x 3 / 12
    assert (sub["current_period_start"], sub["current_period_end"]) == ("2024-02-29", "2025-02-28")
    assert (sub["recurring_amount"], sub["currency"], sub["account_id"]) == ("122.50", "EUR", account["id"])
    listed = gw.admin.get(f"/api/v1/accounts/{account['id']}/subscriptions").json()
    assert [s["id"] for s in listed] == [sub["id"]]
    assert gw.admin.get(f"/api/v1/subscriptions/{sub['id']}").json() == sub


def test_issuers_are_reused_with_the_same_settings_and_conflict_otherwise(gw):
    spec = TestIssuer.new("shared").spec()
    for _ in range(2):
        r = gw.admin.post("/api/v1/tenants", json={"name": "S", "slug": f"shared-{next(_seq)}",
                                                   "issuers": [spec]})
        assert r.status_code == 201, r.text
    other = dict(spec, audience="someone-else")
    r = gw.admin.post("/api/v1/tenants", json={"name": "S", "slug": f"shared-{next(_seq)}",
                                               "issuers": [other]})
    is_error(r, 409, "issuer_conflict")


def test_classification_reasons_and_threshold(gw):
    big = world(gw, country="US", currency="USD", licenses=60, policy={"enterprise_license_threshold": 50})
    account = gw.admin.get(f"/api/v1/accounts/{big.account_id}").json()
    assert account["segment"] == "enterprise" and len(account["segment_reasons"]) == 1
    small = world(gw, country="US", currency="USD", licenses=60)
    assert gw.admin.get(f"/api/v1/accounts/{small.account_id}").json()["segment"] == "self_serve"
    invoice = world(gw, country="US", currency="USD", terms="invoice")
    assert gw.admin.get(f"/api/v1/accounts/{invoice.account_id}").json()["segment"] == "enterprise"


def test_payment_method_and_vat_number(gw):
    w = world(gw)
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method",
                      json=dict(CARD, token="4242 4242 4242 4242"))
    is_error(r, 422, "raw_card_data_refused")
    card(w)
    pm = w.billing.get(f"/api/v1/accounts/{w.account_id}").json()["payment_method"]
    assert (pm["brand"], pm["last4"], pm["exp_month"], pm["exp_year"]) == ("visa", "4242", 12, 2099)
    assert "token" not in pm
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/vat-number", json={"vat_number": "DE 136.695.976"})
    assert r.status_code == 200, r.text
    assert r.json() == {"vat_number": "DE136695976", "country": "DE", "valid": True,
                        "vat_status": "valid"}
    is_error(w.billing.put(f"/api/v1/accounts/{w.account_id}/vat-number", json={"vat_number": "DE136695977"}),
             422, "invalid_vat_number")
    assert w.billing.get(f"/api/v1/accounts/{w.account_id}").json()["vat_number"] == "DE136695976"


# == quotes: the amounts of design.md §3.2-3.4, worked by hand ===============================
def test_annual_to_annual_upgrade_mid_period_irish_buyer(gw):
    # standard x5 annual at 290.00, period [2025-06-15, 2026-06-15): 365 days, 97 left on 03-10
    w = world(gw, country="IE", vat_number="IE6433435F", balance="100.00", period="annual",
              start="2025-06-15")
    r = quote(w, plan="business")
    assert r.status_code == 200, r.text
    q = r.json()
    check_quote_shape(q)
    assert q["subscription_id"] == w.subscription_id and q["currency"] == "EUR"
    assert q["changes"] == ["plan_upgrade"]
    assert q["current"] == {"plan": "standard", "licenses": 5, "billing_period": "annual",
                            "period_start": "2025-06-15", "period_end": "2026-06-15",
                            "recurring_amount": "120.83"}  # 1450 / 12
    assert q["proposed"] == {"plan": "business", "licenses": 5, "billing_period": "annual",
                             "period_start": "2026-03-10", "period_end": "2027-03-10",
                             "recurring_amount": "204.17"}  # 2450 / 12
    # credit 1450 x 97 / 365 = 385.342 -> 385.34; charge 490 x 5 = 2450.00
    assert [(x["type"], x["amount"]) for x in q["lines"]] == [("credit_unused", "-385.34"),
                                                              ("charge", "2450.00")]
    # net 2064.66; balance 100.00; taxable 1964.66; IE buyer, IE seller: 23% -> 451.8718
    assert amounts(q) == ("2064.66", "100.00", "0.00", "451.87", "2416.53")
    assert q["tax"] == {"treatment": "standard", "country": "IE", "rate": "0.23", "amount": "451.87",
                        "rates_as_of": q["tax"]["rates_as_of"], "vat_status": "valid"}
    assert q["rate_increase"] is True
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"},
                                 {"type": "vat_number", "status": "satisfied"}]
    assert q["route"]["destination"] == "billing_center"
    assert q["next_action"] == "provide_requirements"

    body = {"items": [{"subscription_id": w.subscription_id, "plan": "business"}]}
    refused = is_error(order(w.billing, w.account_id, body, "annual-up"), 409, "requirements_outstanding",
                       "requirements")
    assert {"type": "payment_method", "status": "outstanding"} in refused["requirements"]
    card(w)
    assert quote(w, plan="business").json()["next_action"] == "place_order"
    r = order(w.billing, w.account_id, body, "annual-up")  # the refusal released the key
    assert r.status_code == 201, r.text
    placed = r.json()
    check_order_shape(placed)
    assert amounts(placed) == ("2064.66", "100.00", "0.00", "451.87", "2416.53")
    assert placed["status"] == "processing" and placed["route"]["destination"] == "billing_center"
    done = settle(w.billing, placed["id"])
    assert done["status"] == "completed"
    assert "license_assignment" not in done or done["license_assignment"] == []
    sub = w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").json()
    assert (sub["plan"], sub["current_period_start"], sub["current_period_end"], sub["status"]) == (
        "business", "2026-03-10", "2027-03-10", "active")
    assert w.billing.get(f"/api/v1/accounts/{w.account_id}").json()["credit_balance"] == "0.00"


def test_a_trial_gets_no_credit_and_a_us_buyer_no_vat(gw):
    w = world(gw, country="US", currency="USD", status="trial", licenses=3, start="2026-03-01")
    q = quote(w, plan="business").json()
    check_quote_shape(q)
    assert [(x["type"], x["amount"]) for x in q["lines"]] == [("credit_unused", "0.00"), ("charge", "147.00")]
    assert amounts(q) == ("147.00", "0.00", "0.00", "0.00", "147.00")
    assert (q["tax"]["treatment"], q["tax"]["country"], q["tax"]["rate"]) == ("not_applicable", "US", "0.00")
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"}]


def test_a_jpy_account_rounds_to_whole_yen(gw):
    # standard x3 monthly at 3000, [2026-02-20, 2026-03-20): 28 days, 10 left
    w = world(gw, country="JP", currency="JPY", licenses=3, balance="500")
    card(w)
    q = quote(w, plan="business").json()
    check_quote_shape(q)
    # credit 9000 x 10 / 28 = 3214.29 -> 3214; charge 4999 x 3 = 14997; net 11783; balance 500
    assert [(x["type"], x["amount"]) for x in q["lines"]] == [("credit_unused", "-3214"), ("charge", "14997")]
    assert amounts(q) == ("11783", "500", "0", "0", "11283")
    assert (q["current"]["recurring_amount"], q["proposed"]["recurring_amount"]) == ("9000", "14997")
    assert q["tax"]["treatment"] == "not_applicable"
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                   "plan": "business"}]}, "yen")
    assert r.status_code == 201, r.text
    assert amounts(r.json()) == ("11783", "500", "0", "0", "11283")
    assert settle(w.billing, r.json()["id"])["status"] == "completed"
    account = w.billing.get(f"/api/v1/accounts/{w.account_id}").json()
    assert account["credit_balance"] == "0"
    sub = w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").json()
    assert sub["recurring_amount"] == "14997"


def test_annual_to_monthly_credit_larger_than_charge_goes_to_the_balance(gw):
    # business x4 annual CHF 480, [2026-01-10, 2027-01-10): 365 days, 306 left; Swiss buyer
    w = world(gw, country="CH", currency="CHF", plan="business", licenses=4, period="annual",
              start="2026-01-10", balance="1.00")
    card(w)
    q = quote(w, billing_period="monthly").json()
    check_quote_shape(q)
    assert q["changes"] == ["billing_period_changed"]
    # credit 1920 x 306 / 365 = 1609.644 -> 1609.64; charge 48 x 4 = 192.00; net -1417.64
    assert [(x["type"], x["amount"]) for x in q["lines"]] == [("credit_unused", "-1609.64"),
                                                              ("charge", "192.00")]
    assert amounts(q) == ("-1417.64", "0.00", "1417.64", "0.00", "0.00")
    assert (q["tax"]["treatment"], q["tax"]["country"], q["tax"]["rate"]) == ("not_applicable", "CH", "0.00")
    assert q["proposed"]["period_end"] == "2026-04-10"
    # monthly 192.00 > 1920 / 12 = 160.00: the rate increases
    assert (q["current"]["recurring_amount"], q["proposed"]["recurring_amount"]) == ("160.00", "192.00")
    assert q["rate_increase"] is True
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                   "billing_period": "monthly"}]}, "chf")
    assert r.status_code == 201, r.text
    assert settle(w.billing, r.json()["id"])["status"] == "completed"
    assert w.billing.get(f"/api/v1/accounts/{w.account_id}").json()["credit_balance"] == "1418.64"


def test_a_credit_balance_larger_than_the_net_pays_it_all(gw):
    # standard x2 monthly USD, [2026-02-20, 2026-03-20): 28 days, 10 left
    w = world(gw, country="US", currency="USD", licenses=2, balance="500.00")
    card(w)
    q = quote(w, plan="business").json()
    # credit 58 x 10 / 28 = 20.714 -> 20.71; charge 98.00; net 77.29, all from the balance
    assert [(x["type"], x["amount"]) for x in q["lines"]] == [("credit_unused", "-20.71"),
                                                              ("charge", "98.00")]
    assert amounts(q) == ("77.29", "77.29", "0.00", "0.00", "0.00")
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                   "plan": "business"}]}, "balance")
    assert r.status_code == 201, r.text
    assert settle(w.billing, r.json()["id"])["status"] == "completed"
    assert w.billing.get(f"/api/v1/accounts/{w.account_id}").json()["credit_balance"] == "422.71"


def test_french_buyer_without_vat_number_pays_french_vat_with_one_reverse_charge(gw):
    # standard x1 monthly, [2026-03-01, 2026-04-01): 31 days, 22 left
    w = world(gw, country="FR", licenses=1, start="2026-03-01")
    q = quote(w, licenses=3).json()
    check_quote_shape(q)
    assert q["changes"] == ["licenses_added"]
    # credit 29 x 22 / 31 = 20.58; charge 87.00; net 66.42; FR 20% = 13.284 -> 13.28
    assert [(x["type"], x["amount"]) for x in q["lines"]] == [("credit_unused", "-20.58"),
                                                              ("charge", "87.00")]
    assert amounts(q) == ("66.42", "0.00", "0.00", "13.28", "79.70")
    assert (q["tax"]["treatment"], q["tax"]["country"], q["tax"]["rate"]) == ("standard", "FR", "0.20")
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"},
                                 {"type": "vat_number", "status": "outstanding"}]
    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/vat-number",
                         json={"vat_number": "FR40303265045"}).status_code == 200
    q = quote(w, licenses=3).json()
    assert amounts(q) == ("66.42", "0.00", "0.00", "0.00", "66.42")
    assert (q["tax"]["treatment"], q["tax"]["country"], q["tax"]["rate"]) == ("reverse_charge", "FR", "0.00")
    assert {"type": "vat_number", "status": "satisfied"} in q["requirements"]


def test_a_german_buyer_with_vat_number_is_reverse_charged_and_an_irish_one_is_not(gw):
    de = world(gw, country="DE", vat_number="DE136695976")
    assert quote(de, licenses=6).json()["tax"]["treatment"] == "reverse_charge"
    ie = world(gw, country="IE", vat_number="IE6433435F")
    tax = quote(ie, licenses=6).json()["tax"]
    assert (tax["treatment"], tax["country"], tax["rate"]) == ("standard", "IE", "0.23")


def test_no_requirements_when_the_rate_does_not_increase_and_none_on_invoice(gw):
    w = world(gw, country="DE")
    q = quote(w, licenses=4).json()
    assert q["changes"] == ["licenses_removed"] and q["rate_increase"] is False
    # amended §3.3: it still charges 64.21, so a card account needs a card; no VAT number
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"}]
    assert q["next_action"] == "provide_requirements"
    assert q["route"]["destination"] == "billing_center"
    card(w)
    q = quote(w, licenses=4).json()
    assert q["requirements"] == [{"type": "payment_method", "status": "satisfied"}]
    assert q["next_action"] == "place_order"
    # five licenses, period [02-20, 03-20), 10 of 28 days left: credit 145 x 10 / 28 = 51.79; charge 116
    assert amounts(q)[:3] == ("64.21", "0.00", "0.00")
    inv = world(gw, country="US", currency="USD", terms="invoice", channel="corporate")
    q = quote(inv, licenses=6).json()
    assert q["rate_increase"] is True and q["requirements"] == []


# == refusals of a change =====================================================================
def test_quote_refusals(gw):
    w = world(gw, country="US", currency="USD", licenses=2)
    is_error(quote(w), 422, "no_change")
    is_error(quote(w, plan="standard", licenses=2, billing_period="monthly"), 422, "no_change")
    is_error(quote(w, plan="platinum"), 422, "unknown_plan")
    is_error(quote(w, plan="lite", billing_period="annual"), 422, "price_unavailable")  # no USD annual lite
    is_error(quote(w, licenses=0), 422, "validation_error", "errors")
    is_error(quote(w, billing_period="weekly"), 422, "validation_error", "errors")
    # licenses in use
    users = [gw.admin.post(f"/api/v1/accounts/{w.account_id}/users",
                           json={"name": f"U{i}", "email": f"u{i}@x.example"}).json()["id"] for i in range(2)]
    for user in users:
        assert w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/licenses",
                              json={"user_id": user}).status_code == 201
    is_error(quote(w, licenses=1), 422, "licenses_in_use")
    # expired: subscribe now; canceled: refused
    expired = add_subscription(gw, w, status="expired", current_period_start="2026-01-01")
    body = is_error(quote(w, expired, plan="business"), 409, "subscription_expired", "next_action")
    assert body["next_action"] == "subscribe_now"
    body = is_error(order(w.billing, w.account_id, {"items": [{"subscription_id": expired, "licenses": 3}]},
                          "expired"), 409, "subscription_expired")
    assert body.get("next_action") == "subscribe_now"
    canceled = add_subscription(gw, w, status="canceled", current_period_start="2026-01-01")
    is_error(quote(w, canceled, licenses=3), 409, "subscription_canceled")
    is_error(w.billing.post("/api/v1/subscriptions/sub_nothing/quotes", json={"licenses": 3}),
             404, "not_found")


def test_a_downgrade_goes_to_an_advisor_and_is_rejected_with_a_note(gw):
    adv_id, ada = advisor(gw, f"down-{next(_seq)}", pool=f"pool-{next(_seq)}")
    w = world(gw, country="US", currency="USD", plan="business", licenses=2, advisor_id=adv_id)
    card(w)  # the downgrade still charges a new period
    q = quote(w, plan="lite").json()
    assert q["changes"] == ["plan_downgrade"] and q["rate_increase"] is False
    assert (q["route"]["destination"], q["next_action"]) == ("advisor_queue", "contact_advisor")
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "plan": "lite"}]},
              "down")
    assert r.status_code == 201, r.text
    placed = r.json()
    check_order_shape(placed)
    assert (placed["status"], placed["route"]["destination"]) == ("awaiting_advisor", "advisor_queue")
    assert [i["status"] for i in placed["items"]] == ["awaiting_advisor"]

    cases = ada.get("/api/v1/advisor/cases?status=open")
    assert cases.status_code == 200
    case = next(c for c in cases.json() if c["order_id"] == placed["id"])
    assert set(case) >= {"id", "tenant_id", "account_id", "order_id", "reason", "status",
                         "assigned_advisor_id", "pool", "claimed_by", "due_at", "decision", "note"}
    assert (case["tenant_id"], case["account_id"], case["status"]) == (w.tenant_id, w.account_id, "open")
    assert (case["assigned_advisor_id"], case["claimed_by"], case["decision"], case["note"]) == (
        adv_id, None, None, None)
    assert TIMESTAMP.match(case["due_at"]) and isinstance(case["reason"], str) and case["reason"]
    # another advisor of the same pool sees a case assigned to someone else, and may take it
    # only once it is overdue
    _, bob = advisor(gw, f"bob-{next(_seq)}", pool=case["pool"])
    assert any(c["id"] == case["id"] for c in bob.get("/api/v1/advisor/cases").json())
    is_error(bob.post(f"/api/v1/advisor/cases/{case['id']}/claim"), 409, "case_assigned")
    _, eve = advisor(gw, f"eve-{next(_seq)}", pool=f"pool-{next(_seq)}")
    is_error(eve.post(f"/api/v1/advisor/cases/{case['id']}/claim"), 404, "not_found")

    r = ada.post(f"/api/v1/advisor/cases/{case['id']}/claim")
    assert r.status_code == 200 and (r.json()["status"], r.json()["claimed_by"]) == ("claimed", adv_id)
    assert [c["id"] for c in ada.get("/api/v1/advisor/cases?status=claimed").json()] == [case["id"]]
    r = ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve",
                 json={"decision": "reject", "note": "Keep business until renewal."})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["decision"], r.json()["note"]) == (
        "resolved", "reject", "Keep business until renewal.")
    done = w.billing.get(f"/api/v1/orders/{placed['id']}").json()
    assert (done["status"], done["note"]) == ("rejected", "Keep business until renewal.")
    assert w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").json()["plan"] == "business"
    assert [c["id"] for c in ada.get("/api/v1/advisor/cases?status=resolved").json()] == [case["id"]]


def test_cases_come_oldest_due_first_and_a_claimed_case_is_refused_to_others(gw):
    pool = f"pool-{next(_seq)}"
    _, ada = advisor(gw, f"ada-{next(_seq)}", pool=pool)
    ids = []
    for i in range(2):
        w = world(gw, country="US", currency="USD", plan="business", licenses=2)
        card(w)
        r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                       "plan": "lite"}]}, f"pool-{i}")
        assert r.status_code == 201
        ids.append(r.json()["id"])
    # these went to the default pool, not ours: an advisor sees his own accounts and pool only
    assert all(c["order_id"] not in ids for c in ada.get("/api/v1/advisor/cases").json())
    _, cas = advisor(gw, f"cas-{next(_seq)}")
    cases = [c for c in cas.get("/api/v1/advisor/cases").json() if c["order_id"] in ids]
    assert [c["order_id"] for c in cases] == ids
    everything = cas.get("/api/v1/advisor/cases").json()
    due = [datetime.fromisoformat(c["due_at"]) for c in everything]
    assert due == sorted(due)
    _, dan = advisor(gw, f"dan-{next(_seq)}")
    assert cas.post(f"/api/v1/advisor/cases/{cases[0]['id']}/claim").status_code == 200
    body = is_error(dan.post(f"/api/v1/advisor/cases/{cases[0]['id']}/claim"), 409, "case_claimed")
    assert body["code"] == 409
    r = dan.post(f"/api/v1/advisor/cases/{cases[1]['id']}/resolve",
                 json={"decision": "approve", "note": "ok"})
    assert r.status_code == 200 and r.json()["decision"] == "approve"
    assert gw.admin.get(f"/api/v1/orders/{ids[1]}").json()["status"] == "completed"


# == cart, orders, subscribe now ==============================================================
def test_cart_flow_with_tax_computed_once_on_the_sum(gw):
    # Two trial add-ons basic -> pro at 10.03: no credit, charge 10.03 each, net 20.06.
    # IE 23%: once on the sum 4.6138 -> 4.61 (per item it would be 2.31 + 2.31 = 4.62).
    w = world(gw, country="IE", vat_number="IE6433435F", product="addon", plan="basic", licenses=1,
              status="trial", start="2026-03-01")
    second = add_subscription(gw, w, product="addon", plan="basic", status="trial")
    card(w)
    cart_path = f"/api/v1/accounts/{w.account_id}/cart"
    assert w.billing.get(cart_path).json()["items"] == []

    r = w.billing.post(cart_path + "/items", json={"subscription_id": w.subscription_id, "plan": "pro"})
    assert r.status_code == 201, r.text
    first_item = r.json()
    assert isinstance(first_item["id"], str)
    is_error(w.billing.post(cart_path + "/items", json={"subscription_id": w.subscription_id, "licenses": 2}),
             409, "already_in_cart")
    # with items in the cart, a quote says add_to_cart and a direct order is refused
    assert quote(w, second, plan="pro").json()["next_action"] == "add_to_cart"
    body = is_error(order(w.billing, w.account_id, {"items": [{"subscription_id": second, "plan": "pro"}]},
                          "direct"), 409, "cart_not_empty", "next_action")
    assert body["next_action"] == "add_to_cart"
    r = w.billing.post(cart_path + "/items", json={"subscription_id": second, "licenses": 2})
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    r = w.billing.patch(f"{cart_path}/items/{item_id}", json={"plan": "pro", "licenses": 1})
    assert r.status_code == 200, r.text

    cart = w.billing.get(cart_path)
    assert cart.status_code == 200, cart.text
    cart = cart.json()
    assert [i["id"] for i in cart["items"]] == [first_item["id"], item_id]
    assert amounts(cart["quote"]) == ("20.06", "0.00", "0.00", "4.61", "24.67")
    assert cart["quote"]["tax"]["rate"] == "0.23" and cart["quote"]["currency"] == "EUR"

    r = order(w.billing, w.account_id, {"cart": True}, "cart")
    assert r.status_code == 201, r.text
    placed = r.json()
    check_order_shape(placed)
    assert [i["subscription_id"] for i in placed["items"]] == [w.subscription_id, second]
    assert amounts(placed) == ("20.06", "0.00", "0.00", "4.61", "24.67")
    assert w.billing.get(cart_path).json()["items"] == []
    assert settle(w.billing, placed["id"])["status"] == "completed"


def test_cart_items_can_be_removed_and_an_empty_cart_is_not_an_order(gw):
    w = world(gw, country="US", currency="USD")
    cart_path = f"/api/v1/accounts/{w.account_id}/cart"
    item = w.billing.post(cart_path + "/items", json={"subscription_id": w.subscription_id,
                                                      "licenses": 7}).json()
    r = w.billing.delete(f"{cart_path}/items/{item['id']}")
    assert r.status_code == 204 and r.content == b""
    is_error(w.billing.delete(f"{cart_path}/items/{item['id']}"), 404, "not_found")
    assert w.billing.get(cart_path).json()["items"] == []
    r = order(w.billing, w.account_id, {"cart": True}, "empty")
    assert r.status_code == 422


def test_subscribe_now_reactivates_the_expired_subscription(gw):
    w = world(gw, country="US", currency="USD", status="expired", plan="lite", licenses=1,
              start="2026-01-01")
    card(w)
    item = {"product": "meetings", "plan": "standard", "licenses": 2, "billing_period": "monthly"}
    # a cart item accepts the same form
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/cart/items", json=item)
    assert r.status_code == 201, r.text
    assert [(x["type"], x["amount"]) for x in r.json()["lines"]] == [("charge", "58.00")]
    cart = w.billing.get(f"/api/v1/accounts/{w.account_id}/cart").json()
    assert amounts(cart["quote"]) == ("58.00", "0.00", "0.00", "0.00", "58.00")
    assert w.billing.delete(f"/api/v1/accounts/{w.account_id}/cart/items/{r.json()['id']}").status_code == 204

    r = order(w.billing, w.account_id, {"items": [item]}, "subscribe")
    assert r.status_code == 201, r.text
    placed = r.json()
    check_order_shape(placed)
    assert placed["items"][0]["changes"] == ["new_subscription"]
    assert amounts(placed) == ("58.00", "0.00", "0.00", "0.00", "58.00")
    done = settle(w.billing, placed["id"])
    assert done["status"] == "completed"
    assert done["items"][0]["subscription_id"] == w.subscription_id
    assert done["license_assignment"] == [{"subscription_id": w.subscription_id, "unassigned": 2,
                                           "assign_url": licenses_url(w)}]
    sub = w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").json()
    assert (sub["status"], sub["plan"], sub["licenses"], sub["current_period_start"],
            sub["current_period_end"]) == ("active", "standard", 2, "2026-03-10", "2026-04-10")
    subs = w.billing.get(f"/api/v1/accounts/{w.account_id}/subscriptions").json()
    assert len(subs) == 1


def test_subscribe_now_without_an_expired_one_creates_a_subscription(gw):
    w = world(gw, country="US", currency="USD")
    card(w)
    r = order(w.billing, w.account_id, {"items": [{"product": "meetings", "plan": "business", "licenses": 1,
                                                   "billing_period": "annual"}]}, "new")
    assert r.status_code == 201, r.text
    assert amounts(r.json()) == ("490.00", "0.00", "0.00", "0.00", "490.00")
    done = settle(w.billing, r.json()["id"])
    new_id = done["items"][0]["subscription_id"]
    assert isinstance(new_id, str) and new_id != w.subscription_id
    sub = w.billing.get(f"/api/v1/subscriptions/{new_id}").json()
    assert (sub["plan"], sub["billing_period"], sub["current_period_end"], sub["status"]) == (
        "business", "annual", "2027-03-10", "active")
    is_error(order(w.billing, w.account_id, {"items": [{"product": "meetings", "plan": "nope", "licenses": 1,
                                                        "billing_period": "annual"}]}, "bad"),
             422, "unknown_plan")
    is_error(order(w.billing, w.account_id, {"items": [{"product": "meetings", "plan": "lite", "licenses": 1,
                                                        "billing_period": "annual"}]}, "noprice"),
             422, "price_unavailable")


def test_idempotency(gw):
    w = world(gw, country="US", currency="USD")
    card(w)
    body = {"items": [{"subscription_id": w.subscription_id, "licenses": 6}]}
    path = f"/api/v1/accounts/{w.account_id}/orders"
    is_error(w.billing.post(path, json=body), 400, "idempotency_key_required")
    first = order(w.billing, w.account_id, body, "idem")
    assert first.status_code == 201
    again = order(w.billing, w.account_id, body, "idem")
    assert again.status_code == 201 and again.json() == first.json()
    is_error(order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                        "licenses": 7}]}, "idem"),
             422, "idempotency_key_reused")
    listed = w.billing.get(path).json()
    assert [o["id"] for o in listed] == [first.json()["id"]]
    assert w.member.get(f"/api/v1/orders/{first.json()['id']}").status_code == 200


def test_an_order_goes_where_its_most_restrictive_item_goes(gw):
    w = world(gw, country="US", currency="USD", plan="business", licenses=2)
    card(w)
    second = add_subscription(gw, w, plan="standard", licenses=1)
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": second, "licenses": 3},
                                                  {"subscription_id": w.subscription_id, "plan": "lite"}]},
              "mixed")
    assert r.status_code == 201, r.text
    placed = r.json()
    assert [i["route"]["destination"] for i in placed["items"]] == ["billing_center", "advisor_queue"]
    assert (placed["route"]["destination"], placed["status"]) == ("advisor_queue", "awaiting_advisor")
    # nothing applied meanwhile: the order is carried out as a whole
    time.sleep(0.2)
    assert w.billing.get(f"/api/v1/subscriptions/{second}").json()["licenses"] == 1


# == enterprise: the corporate portal's quotes ================================================
def test_enterprise_license_addition_becomes_a_portal_quote_accepted_then_one_rejected(gw):
    w = world(gw, country="FR", channel="corporate", terms="invoice", vat_number="FR40303265045",
              plan="business", licenses=2, start="2026-03-01")
    account = gw.admin.get(f"/api/v1/accounts/{w.account_id}").json()
    assert account["segment"] == "enterprise"
    q = quote(w, licenses=4).json()
    assert (q["route"]["destination"], q["next_action"]) == ("corporate_portal", "place_order")
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "licenses": 4}]},
              "portal")
    assert r.status_code == 201, r.text
    placed = r.json()
    assert (placed["status"], placed["route"]["destination"]) == ("awaiting_acceptance", "corporate_portal")
    # business x2 EUR monthly [03-01, 04-01), 22 of 31 days left: credit 98 x 22 / 31 = 69.55;
    # charge 196.00; reverse charge
    assert amounts(placed) == ("126.45", "0.00", "0.00", "0.00", "126.45")

    quotes = w.billing.get(f"/api/v1/accounts/{w.account_id}/portal-quotes")
    assert quotes.status_code == 200
    [pq] = quotes.json()
    assert set(pq) >= {"id", "order_id", "account_id", "status", "items", "total_due", "currency",
                       "expires_at"}
    assert (pq["order_id"], pq["account_id"], pq["status"], pq["total_due"], pq["currency"]) == (
        placed["id"], w.account_id, "open", "126.45", "EUR")
    assert TIMESTAMP.match(pq["expires_at"]) and pq["items"]
    is_error(w.member.post(f"/api/v1/portal-quotes/{pq['id']}/accept"), 403, "not_billing_contact")
    r = w.billing.post(f"/api/v1/portal-quotes/{pq['id']}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "accepted"
    done = w.billing.get(f"/api/v1/orders/{placed['id']}").json()
    assert done["status"] == "completed"
    assert done["license_assignment"] == [{"subscription_id": w.subscription_id, "unassigned": 4,
                                           "assign_url": licenses_url(w)}]
    assert w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").json()["licenses"] == 4

    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "plan": "free"}]},
              "portal-down")
    assert r.json()["route"]["destination"] == "advisor_queue"  # enterprise downgrade
    other = add_subscription(gw, w)
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": other, "licenses": 3}]}, "portal-2")
    assert r.status_code == 201, r.text
    pq2 = next(x for x in w.billing.get(f"/api/v1/accounts/{w.account_id}/portal-quotes").json()
               if x["order_id"] == r.json()["id"])
    rejected = w.billing.post(f"/api/v1/portal-quotes/{pq2['id']}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    gone = w.billing.get(f"/api/v1/orders/{r.json()['id']}").json()
    assert gone["status"] == "rejected" and isinstance(gone.get("note"), str) and gone["note"]


def test_enterprise_changes_other_than_upgrades_go_to_the_dedicated_advisor(gw):
    adv_id, ada = advisor(gw, f"ded-{next(_seq)}")
    w = world(gw, country="US", currency="USD", advisor_id=adv_id)
    card(w)
    assert gw.admin.get(f"/api/v1/accounts/{w.account_id}").json()["segment"] == "enterprise"
    for change, kinds in (({"licenses": 3}, ["licenses_removed"]),
                          ({"plan": "business", "billing_period": "annual"},
                           ["plan_upgrade", "billing_period_changed"])):
        q = quote(w, **change).json()
        assert (q["changes"], q["route"]["destination"]) == (kinds, "advisor_queue")
    r = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "licenses": 3}]},
              "ded")
    case = next(c for c in ada.get("/api/v1/advisor/cases").json() if c["order_id"] == r.json()["id"])
    assert case["assigned_advisor_id"] == adv_id
    r2 = ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve", json={"decision": "approve", "note": "fine"})
    assert r2.status_code == 200, r2.text
    done = w.billing.get(f"/api/v1/orders/{r.json()['id']}").json()
    assert done["status"] == "completed" and "license_assignment" not in done
    assert w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").json()["licenses"] == 3


# == licenses =================================================================================
def test_licenses_assign_and_unassign(gw):
    w = world(gw, country="US", currency="USD", licenses=1)
    path = f"/api/v1/subscriptions/{w.subscription_id}/licenses"
    users = [gw.admin.post(f"/api/v1/accounts/{w.account_id}/users",
                           json={"name": f"U{i}", "email": f"u{i}@x.example"}).json()["id"] for i in range(2)]
    empty = w.billing.get(path).json()
    assert (empty["total"], empty["assigned"], empty["unassigned"], empty["assignments"]) == (1, 0, 1, [])
    r = w.billing.post(path, json={"user_id": users[0]})
    assert r.status_code == 201, r.text
    is_error(w.billing.post(path, json={"user_id": users[1]}), 409, "no_license_available")
    summary = gw.service("read").get(path).json()
    assert (summary["total"], summary["assigned"], summary["unassigned"]) == (1, 1, 0)
    [holder] = summary["assignments"]
    assert holder["user_id"] == users[0] and TIMESTAMP.match(holder["assigned_at"])
    is_error(w.member.post(path, json={"user_id": users[1]}), 403, "not_billing_contact")
    r = w.billing.delete(f"{path}/{users[0]}")
    assert r.status_code == 204
    assert w.billing.get(path).json()["assigned"] == 0
    assert gw.service("billing").post(path, json={"user_id": users[1]}).status_code == 201


# == events ===================================================================================
def test_events_feed_in_order_with_after(gw):
    reader = gw.service("read")
    last = None
    while page := reader.get("/api/v1/events?limit=200" + (f"&after={last}" if last else "")).json():
        last = page[-1]["id"]
    w = world(gw, country="US", currency="USD", plan="business", licenses=2)
    card(w)
    up = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "licenses": 3}]},
               "ev-up").json()
    settle(w.billing, up["id"])
    down = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id, "plan": "lite"}]},
                 "ev-down").json()
    _, cas = advisor(gw, f"ev-{next(_seq)}")
    case = next(c for c in cas.get("/api/v1/advisor/cases").json() if c["order_id"] == down["id"])
    cas.post(f"/api/v1/advisor/cases/{case['id']}/resolve", json={"decision": "reject", "note": "no"})
    r = reader.get("/api/v1/events" + (f"?after={last}" if last else ""))
    assert r.status_code == 200
    events = [e for e in r.json() if e["tenant_id"] == w.tenant_id]
    for e in events:
        assert set(e) >= {"id", "type", "tenant_id", "created_at", "data"}
        assert isinstance(e["id"], str) and TIMESTAMP.match(e["created_at"]) and isinstance(e["data"], dict)
    assert [e["type"] for e in events] == [
        "order.created", "subscription.updated", "order.completed",
        "order.created", "advisor_case.opened", "order.rejected", "advisor_case.resolved"]
    ids = [int(e["id"]) for e in r.json()]
    assert ids == sorted(ids) and (last is None or ids[0] > int(last))
    assert reader.get(f"/api/v1/events?after={ids[-1]}").json() == []


def test_requirements_follow_the_card_on_file_and_the_tenant_policy(gw):
    w = world(gw, country="DE", policy={"require_vat_number": False})
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method",
                      json=dict(CARD, exp_month=2, exp_year=2026))  # expired on 2026-03-10
    assert r.status_code == 200, r.text
    q = quote(w, licenses=6).json()
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"}]
    card(w)
    q = quote(w, licenses=6).json()
    assert (q["requirements"], q["next_action"]) == ([{"type": "payment_method", "status": "satisfied"}],
                                                     "place_order")
    # no VAT number on file, but not required: DE standard rate 19% on 174.00 - 51.79 = 122.21
    assert (q["tax"]["treatment"], q["tax"]["rate"], q["tax"]["amount"], q["total_due"]) == (
        "standard", "0.19", "23.22", "145.43")


def test_tenant_rules_send_more_to_advisors_but_a_pin_decides_the_segment(gw):
    rules = {"advisor_rules": [{"change_kind": "licenses_added", "reason": "Seats need a review."}]}
    w = world(gw, country="US", currency="USD", policy=rules)
    q = quote(w, licenses=6).json()
    assert q["route"] == {"destination": "advisor_queue", "reason": "Seats need a review."}
    assert q["next_action"] in ("contact_advisor", "provide_requirements")
    pinned = world(gw, country="US", currency="USD", channel="corporate", policy={"segment": "self_serve"})
    assert gw.admin.get(f"/api/v1/accounts/{pinned.account_id}").json()["segment"] == "self_serve"
    assert quote(pinned, licenses=6).json()["route"]["destination"] == "billing_center"


# == mismatches found by this walk (each failed before its fix) ================================
def test_every_422_carries_errors_field_to_messages(gw):
    # api.md, Conventions: "plus `errors` (field -> messages) on 422"
    w = world(gw, country="US", currency="USD")
    card(w)
    second = add_subscription(gw, w, licenses=2)
    users = [gw.admin.post(f"/api/v1/accounts/{w.account_id}/users",
                           json={"name": f"U{i}", "email": f"u{i}@x.example"}).json()["id"] for i in range(2)]
    for user in users:
        r = w.billing.post(f"/api/v1/subscriptions/{second}/licenses", json={"user_id": user})
        assert r.status_code == 201, r.text
    placed = order(w.billing, w.account_id,
                   {"items": [{"subscription_id": w.subscription_id, "licenses": 6}]}, "422-key")
    assert placed.status_code == 201, placed.text
    refusals = [
        (quote(w), "no_change", None),
        (quote(w, plan="platinum"), "unknown_plan", "plan"),
        (quote(w, plan="lite", billing_period="annual"), "price_unavailable", "plan"),
        (quote(w, second, licenses=1), "licenses_in_use", "licenses"),
        (order(w.billing, w.account_id, {"cart": True}, "422-cart"), "cart_empty", None),
        (order(w.billing, w.account_id, {"items": [{"subscription_id": second, "licenses": 3},
                                                   {"subscription_id": second, "licenses": 4}]}, "422-dup"),
         "duplicate_subscription", None),
        (order(w.billing, w.account_id, {"items": [{"subscription_id": second, "licenses": 3}]}, "422-key"),
         "idempotency_key_reused", None),
    ]
    for r, error, field in refusals:
        body = is_error(r, 422, error, "errors")
        assert isinstance(body["errors"], dict) and body["errors"], body
        assert all(isinstance(v, list) and v for v in body["errors"].values()), body
        if field:
            assert field in body["errors"], body


def test_query_string_422_names_the_parameter(gw):
    _, ada = advisor(gw, f"q-{next(_seq)}")
    body = is_error(gw.service("read").get("/api/v1/events?after=abc"), 422, "validation_error", "errors")
    assert list(body["errors"]) == ["after"], body
    body = is_error(ada.get("/api/v1/advisor/cases?status=sleeping"), 422, "validation_error", "errors")
    assert list(body["errors"]) == ["status"], body


def test_bodyless_actions_refuse_unknown_fields(gw):
    # api.md, Conventions: "Unknown body fields are refused (422), never silently accepted."
    w = world(gw, country="US", currency="USD", channel="corporate", terms="invoice")
    placed = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                        "licenses": 6}]}, "bodyless").json()
    [pq] = w.billing.get(f"/api/v1/accounts/{w.account_id}/portal-quotes").json()
    for action in ("accept", "reject"):
        r = w.billing.post(f"/api/v1/portal-quotes/{pq['id']}/{action}", json={"approved_by": "me"})
        is_error(r, 422, "validation_error", "errors")
    assert w.billing.get(f"/api/v1/orders/{placed['id']}").json()["status"] == "awaiting_acceptance"
    # the portal's reason for a rejection may be given, and the order carries it
    r = w.billing.post(f"/api/v1/portal-quotes/{pq['id']}/reject", json={"note": "Budget frozen."})
    assert r.status_code == 200, r.text
    assert w.billing.get(f"/api/v1/orders/{placed['id']}").json()["note"] == "Budget frozen."

    down = order(w.billing, w.account_id, {"items": [{"subscription_id": w.subscription_id,
                                                      "plan": "lite"}]}, "bodyless-down").json()
    _, cas = advisor(gw, f"bl-{next(_seq)}")
    case = next(c for c in cas.get("/api/v1/advisor/cases").json() if c["order_id"] == down["id"])
    is_error(cas.post(f"/api/v1/advisor/cases/{case['id']}/claim", json={"minutes": 5}),
             422, "validation_error", "errors")
    assert cas.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 200


def test_metrics_need_a_token(gw):
    # api.md, Conventions: only /healthz, /readyz, /openapi.json, the docs, /oauth/token and
    # /.well-known/jwks.json answer without a bearer token
    r = gw.anon.get("/metrics")
    is_error(r, 401, "missing_token")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = gw.service("read").get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert "gateway_http_requests_total" in r.text


def test_read_scope_reads_the_cart(gw):
    # api.md, Identity: `read` reads everything
    w = world(gw, country="US", currency="USD")
    w.billing.post(f"/api/v1/accounts/{w.account_id}/cart/items",
                   json={"subscription_id": w.subscription_id, "licenses": 7})
    r = gw.service("read").get(f"/api/v1/accounts/{w.account_id}/cart")
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 1 and r.json()["quote"]["net"]
    is_error(gw.service("read").post(f"/api/v1/accounts/{w.account_id}/cart/items",
                                     json={"subscription_id": w.subscription_id, "licenses": 8}),
             403, "insufficient_scope")


def test_subscribing_to_a_free_plan_is_no_rate_increase(gw):
    # design.md §3.3: rate_increase = recurring(new) > recurring(current); a new free plan costs
    # nothing more than nothing, so it needs no payment method and no VAT number
    w = world(gw, country="DE", status="expired")
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/cart/items", json={
        "product": "meetings", "plan": "free", "licenses": 3, "billing_period": "monthly"})
    assert r.status_code == 201, r.text
    cart = w.billing.get(f"/api/v1/accounts/{w.account_id}/cart").json()
    assert (cart["quote"]["rate_increase"], cart["quote"]["requirements"]) == (False, [])
    assert amounts(cart["quote"]) == ("0.00", "0.00", "0.00", "0.00", "0.00")
    r = order(w.billing, w.account_id, {"cart": True}, "free")
    assert r.status_code == 201, r.text
    assert settle(w.billing, r.json()["id"])["status"] == "completed"
