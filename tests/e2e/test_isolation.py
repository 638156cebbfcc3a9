"""Tenant isolation and the door itself, walked over the app's url_map so that a view added
later is covered without anyone remembering to add it here.

- Tenant A's contacts calling any route with tenant B's ids get 404, exactly as for ids that do
  not exist (a refusal by kind of caller, e.g. "contacts cannot do admin", may be a 403, but
  the same 403 a made-up id gets);
- no list tenant A's contacts can read shows anything of tenant B;
- every route outside the explicit public allow-list answers 401 without a token, and the
  OpenAPI document says so.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from tests.conftest import Http, TestIssuer, build_app, make_world, service_token

# Routes anyone may call without a token (api.md, "Conventions"), by path.
PUBLIC_PATHS = {
    "/healthz", "/readyz", "/openapi.json", "/docs", "/oauth/token",
    "/.well-known/jwks.json", "/dev-issuer/jwks.json", "/static/<path:filename>",
}
# Path parameters that name a tenant's object, and which of the seeded ids fills them.
TENANT_OWNED = {
    "tenant_id": "tenant", "account_id": "account", "subscription_id": "subscription",
    "user_id": "user", "item_id": "cart_item", "order_id": "order", "quote_id": "portal_quote",
    "case_id": "case",
}
# Path parameters that name something shared by every tenant.
SHARED = {"code": "webinar",  # the catalog
          # webhook endpoints are the internal systems' (scope admin), not a tenant's
          "endpoint_id": "whe_0000000000000000", "delivery_id": "whd_0000000000000000"}
# Refusals by kind of caller, decided before any object is looked up: the only 403s allowed
# when every id in the path is B's.
KIND_REFUSALS = {"not_an_advisor"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ERROR_KEYS = {"code", "status", "error", "message"}


def bodies(ids: dict) -> dict:
    """A valid body per (endpoint, method), so that validation never hides the ownership check."""
    account = {"name": "Intruder", "country": "DE", "currency": "EUR", "billing_channel": "online",
               "payment_terms": "card"}
    change = {"subscription_id": ids["subscription"], "licenses": 6}
    return {
        ("tenants.TenantById", "PATCH"): {"name": "Hijacked"},
        ("tenants.TenantAccounts", "POST"): account,
        ("accounts.Contacts", "POST"): {"subject": "intruder", "name": "Intruder",
                                        "email": "intruder@x.example", "roles": ["billing_contact"]},
        ("accounts.Users", "POST"): {"name": "Intruder", "email": "intruder@x.example"},
        ("accounts.Subscriptions", "POST"): {
            "product": "webinar", "plan": "lite", "licenses": 1, "billing_period": "monthly",
            "status": "active", "current_period_start": "2026-01-01"},
        ("accounts.PaymentMethod", "PUT"): {"token": "tok_intruder", "brand": "visa", "last4": "4242",
                                            "exp_month": 1, "exp_year": 2030},
        ("accounts.VatNumber", "PUT"): {"vat_number": "DE136695976"},
        ("licenses.Licenses", "POST"): {"user_id": ids["user"]},
        ("quotes.Quotes", "POST"): {"licenses": 6},
        ("quotes.CartItems", "POST"): change,
        ("quotes.CartItem", "PATCH"): {"licenses": 7},
        ("orders.AccountOrders", "POST"): {"items": [change]},
        ("advisor_queue.Resolve", "POST"): {"decision": "approve", "note": "looks fine"},
        ("advisor_queue.Notes", "POST"): {"note": "looks fine"},
    }


HEADERS = {("orders.AccountOrders", "POST"): {"Idempotency-Key": "isolation-walk"}}


def seed_objects(app, world, admin: Http) -> dict:
    """One of everything a tenant owns, with its id."""
    from adapters.models import AdvisorCase, PortalQuote
    from gateway.orders.models import CartItem, Order

    r = admin.post(f"/api/v1/accounts/{world.account_id}/users",
                   json={"name": "Seat holder", "email": "seat@x.example"})
    assert r.status_code == 201, r.get_json()
    user_id = r.get_json()["id"]
    r = admin.post(f"/api/v1/subscriptions/{world.subscription_id}/licenses", json={"user_id": user_id})
    assert r.status_code == 201, r.get_json()
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        common = {"tenant_id": world.tenant_id, "account_id": world.account_id}
        item = CartItem(subscription_id=world.subscription_id, licenses=6, **common)
        today = date(2026, 3, 1)
        zero = Decimal("0")
        order = Order(status="awaiting_advisor", route_destination="advisor_queue",
                      route_reason="seeded", currency="EUR", net=zero, balance_applied=zero,
                      credit_added=zero, tax_treatment="standard", tax_country="DE",
                      tax_rate=Decimal("0.19"), tax_amount=zero, total_due=zero, rates_as_of=today,
                      today=today, placed_by="seed", idempotency_key=None, **common)
        db.add_all([item, order])
        db.flush()
        quote = PortalQuote(order_id=order.id, status="open", items=[], total_due=zero,
                            currency="EUR", expires_at=_far_future(), **common)
        case = AdvisorCase(order_id=order.id, reason="seeded", status="open",
                           pool="corporate-account-services", due_at=_far_future(), **common)
        db.add_all([quote, case])
        db.commit()
        ids = {"cart_item": item.id, "order": order.id, "portal_quote": quote.id, "case": case.id}
    finally:
        db.close()
    return {"tenant": world.tenant_id, "account": world.account_id,
            "subscription": world.subscription_id, "user": user_id, **ids}


def _far_future():
    from tenants.db import utcnow

    return utcnow() + timedelta(days=30)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isolation")
    app = build_app(f"sqlite:///{tmp / 'gateway.db'}", tmp)
    admin = Http(app.test_client(), service_token(app))
    a = make_world(admin, TestIssuer.new("a"), "acme")
    b = make_world(admin, TestIssuer.new("b"), "globex", country="FR", vat_number="FR40303265045")
    a_ids, b_ids = seed_objects(app, a, admin), seed_objects(app, b, admin)
    # B's people and names too: none of it may show up in anything A reads.
    b_secrets = set(b_ids.values()) | {"globex", "billing@globex", "member@globex",
                                       "billing.globex@x.example", "FR40303265045"}
    yield SimpleNamespace(app=app, admin=admin, a=a, b=b, a_ids=a_ids, b_ids=b_ids,
                          b_secrets=b_secrets)
    app.extensions["gateway.db"].dispose()


def api_rules(app):
    """Every rule of the API. The pages (gateway.web) take a session cookie, never a token:
    tests/e2e/test_pages.py walks their door."""
    pages = app.extensions.get("gateway.page_endpoints", frozenset())
    return sorted((r for r in app.url_map.iter_rules()
                   if r.endpoint not in pages or r.rule in PUBLIC_PATHS), key=lambda r: r.rule)


def routes(app):
    """(rule, method) for every route and method a caller could use."""
    for rule in api_rules(app):
        for method in sorted(rule.methods & set(METHODS)):
            yield rule, method


PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def path_for(app, rule, values: dict) -> str:
    return PARAM.sub(lambda m: values[m.group(1)], rule.rule)


def openapi_path(rule) -> str:
    return PARAM.sub(r"{\1}", rule.rule)


def leaked(text: str, secrets: set[str]) -> set[str]:
    return {s for s in secrets if s in text}


def call(http: Http, rule, method: str, path: str, ids: dict):
    key = (rule.endpoint, method)
    return http.call(method, path, json=bodies(ids).get(key) if method != "GET" else None,
                     headers=HEADERS.get(key))


def combos(rule, a_ids: dict, b_ids: dict):
    """Every way of filling the rule's tenant-owned parameters with at least one of B's ids."""
    owned = sorted(p for p in rule.arguments if p in TENANT_OWNED)
    for choice in itertools.product(("a", "b"), repeat=len(owned)):
        if "b" not in choice:
            continue
        values = {p: (b_ids if side == "b" else a_ids)[TENANT_OWNED[p]]
                  for p, side in zip(owned, choice, strict=True)}
        yield values | {p: SHARED[p] for p in rule.arguments if p in SHARED}


def made_up(values: dict, b_ids: dict) -> dict:
    """The same parameters with B's ids replaced by ids nobody has."""
    b_values = set(b_ids.values())
    return {k: (f"{v.split('_')[0]}_0000000000000000" if v in b_values else v) for k, v in values.items()}


# -- every parameter is understood ------------------------------------------------------------
def test_every_path_parameter_is_known(tenants):
    """A new route with a parameter this walk cannot fill fails here, not silently."""
    unknown = {(r.rule, p) for r, _ in routes(tenants.app) if r.rule not in PUBLIC_PATHS
               for p in r.arguments if p not in TENANT_OWNED and p not in SHARED}
    assert not unknown


def test_the_walk_covers_the_routes_of_the_contract(tenants):
    owned = {r.rule for r, _ in routes(tenants.app) if set(r.arguments) & set(TENANT_OWNED)}
    for expected in ("/api/v1/tenants/<tenant_id>", "/api/v1/accounts/<account_id>",
                     "/api/v1/subscriptions/<subscription_id>",
                     "/api/v1/subscriptions/<subscription_id>/licenses/<user_id>"):
        assert expected in owned


# -- B's ids, as A's contacts -----------------------------------------------------------------
@pytest.mark.parametrize("who", ["billing", "member"])
def test_another_tenants_objects_answer_404(tenants, who):
    me = getattr(tenants.a, who)
    problems = []
    checked = 0
    for rule, method in routes(tenants.app):
        if rule.rule in PUBLIC_PATHS or not set(rule.arguments) & set(TENANT_OWNED):
            continue
        for values in combos(rule, tenants.a_ids, tenants.b_ids):
            label = f"{method} {rule.rule} {values}"
            r = call(me, rule, method, path_for(tenants.app, rule, values), tenants.b_ids)
            checked += 1
            text = r.get_data(as_text=True)
            body = r.get_json(silent=True) or {}
            if leaked(text, tenants.b_secrets):
                problems.append(f"{label}: answer shows {leaked(text, tenants.b_secrets)}")
            if r.status_code == 422:
                problems.append(f"{label}: 422 before the ownership check; give it a valid body")
                continue
            if r.status_code not in (403, 404):
                problems.append(f"{label}: {r.status_code} {text[:200]}")
                continue
            if not ERROR_KEYS <= set(body):
                problems.append(f"{label}: not the error shape: {text[:200]}")
            only_b = all(v in tenants.b_ids.values() for k, v in values.items() if k in TENANT_OWNED)
            if r.status_code == 403 and only_b and body.get("error") not in KIND_REFUSALS:
                # With A's account in the path, "not a billing contact of it" is fair; on B's
                # objects alone, only "your kind of caller cannot do this at all" is.
                problems.append(f"{label}: 403 {body.get('error')} (an object-level refusal)")
            nobody = made_up(values, tenants.b_ids)
            r2 = call(me, rule, method, path_for(tenants.app, rule, nobody), tenants.b_ids)
            if (r2.status_code, r2.get_json(silent=True)) != (r.status_code, body):
                problems.append(f"{label}: {r.status_code} {body.get('error')} differs from a made-up "
                                f"id's {r2.status_code} {(r2.get_json(silent=True) or {}).get('error')}")
    assert checked >= 20
    assert not problems, "\n".join(problems)


def test_a_contact_cannot_reach_into_another_account_of_its_own_tenant(tenants):
    admin, a = tenants.admin, tenants.a
    r = admin.post(f"/api/v1/tenants/{a.tenant_id}/accounts", json={
        "name": "Sister", "country": "DE", "currency": "EUR", "billing_channel": "online",
        "payment_terms": "card"})
    sister = r.get_json()["id"]
    assert a.billing.get(f"/api/v1/accounts/{sister}").status_code == 404
    assert a.billing.put(f"/api/v1/accounts/{sister}/vat-number",
                         json={"vat_number": "DE136695976"}).status_code == 404
    listed = a.billing.get(f"/api/v1/tenants/{a.tenant_id}/accounts")
    assert listed.status_code == 200
    assert [x["id"] for x in listed.get_json()] == [a.account_id]


def test_a_users_license_on_another_tenants_user_is_refused_like_a_made_up_one(tenants):
    a, b_user = tenants.a, tenants.b_ids["user"]
    path = f"/api/v1/subscriptions/{a.subscription_id}/licenses"
    theirs = a.billing.post(path, json={"user_id": b_user})
    nobody = a.billing.post(path, json={"user_id": "usr_0000000000000000"})
    assert theirs.status_code == nobody.status_code == 422
    assert theirs.get_json()["error"] == nobody.get_json()["error"]
    assert b_user not in a.billing.get(path).get_data(as_text=True)


# -- lists A can read never show B ------------------------------------------------------------
@pytest.mark.parametrize("who", ["billing", "member"])
def test_lists_never_show_another_tenants_objects(tenants, who):
    me = getattr(tenants.a, who)
    problems, answered = [], 0
    for rule, method in routes(tenants.app):
        if method != "GET" or rule.rule in PUBLIC_PATHS:
            continue
        values = {p: tenants.a_ids[TENANT_OWNED[p]] if p in TENANT_OWNED else SHARED[p]
                  for p in rule.arguments}
        r = me.get(path_for(tenants.app, rule, values))
        if r.status_code >= 500:
            problems.append(f"GET {rule.rule}: {r.status_code}")
        if r.status_code == 200:
            answered += 1
        if leaked(r.get_data(as_text=True), tenants.b_secrets):
            problems.append(f"GET {rule.rule}: shows {leaked(r.get_data(as_text=True), tenants.b_secrets)}")
    assert answered >= 8  # the walk did read A's own lists
    assert not problems, "\n".join(problems)


def test_the_lists_do_show_the_callers_own_objects(tenants):
    """The other side of the coin: the walk above looks at lists that hold something."""
    a, ids = tenants.a, tenants.a_ids
    expectations = {
        f"/api/v1/tenants/{ids['tenant']}/accounts": ids["account"],
        f"/api/v1/accounts/{ids['account']}/subscriptions": ids["subscription"],
        f"/api/v1/accounts/{ids['account']}/users": ids["user"],
        f"/api/v1/subscriptions/{ids['subscription']}/licenses": ids["user"],
        "/api/v1/me": ids["account"],
    }
    for path, own in expectations.items():
        r = a.billing.get(path)
        assert r.status_code == 200, (path, r.get_json())
        assert own in r.get_data(as_text=True), path


def test_a_service_token_does_see_every_tenant(tenants):
    listed = {t["id"] for t in tenants.admin.get("/api/v1/tenants").get_json()}
    assert {tenants.a.tenant_id, tenants.b.tenant_id} <= listed


# -- the door: no token, no entry -------------------------------------------------------------
def all_rules_and_methods(app):
    for rule in api_rules(app):
        for method in sorted(rule.methods):
            yield rule, method


def test_the_public_allow_list_is_what_the_app_leaves_open(tenants):
    app = tenants.app
    open_endpoints = app.extensions["gateway.public_endpoints"]
    open_paths = {r.rule for r in api_rules(app) if r.endpoint in open_endpoints}
    assert open_paths == PUBLIC_PATHS


@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["no-token", "bad-token"])
def test_every_route_outside_the_allow_list_needs_a_token(tenants, token):
    app = tenants.app
    client = app.test_client()
    problems, checked = [], 0
    for rule, method in all_rules_and_methods(app):
        if rule.rule in PUBLIC_PATHS:
            continue
        values = {p: "x" for p in rule.arguments}
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = client.open(path_for(app, rule, values), method=method, headers=headers, json={})
        checked += 1
        if r.status_code != 401 or "WWW-Authenticate" not in r.headers:
            problems.append(f"{method} {rule.rule}: {r.status_code}")
        elif method != "HEAD" and not ERROR_KEYS <= set(r.get_json() or {}):
            problems.append(f"{method} {rule.rule}: not the error shape")
    assert checked >= 40
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs",
                                  "/.well-known/jwks.json", "/dev-issuer/jwks.json"])
def test_the_public_routes_answer_without_a_token(tenants, path):
    assert tenants.app.test_client().get(path).status_code == 200


def test_openapi_requires_bearer_for_every_non_public_operation(tenants):
    app = tenants.app
    spec = app.test_client().get("/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    bearer = {name for name, s in schemes.items() if s.get("type") == "http" and s.get("scheme") == "bearer"}
    assert bearer
    public = {openapi_path(r) for r in app.url_map.iter_rules() if r.rule in PUBLIC_PATHS}
    problems = []
    for rule, method in routes(app):
        if rule.rule in PUBLIC_PATHS:
            continue
        op = spec["paths"].get(openapi_path(rule), {}).get(method.lower())
        if op is None:
            problems.append(f"{method} {rule.rule}: not in /openapi.json")
            continue
        security = op.get("security", spec.get("security", []))
        if not any(set(req) & bearer for req in security):
            problems.append(f"{method} {rule.rule}: security {json.dumps(security)}")
    for path, ops in spec["paths"].items():
        if path in public:
            continue
        for method, op in ops.items():
            if method in ("get", "post", "put", "patch", "delete") and op.get("security") == []:
                problems.append(f"{method.upper()} {path}: documented as public")
    assert not problems, "\n".join(problems)
