"""Administration over HTTP (scope admin), on SQLite and on PostgreSQL: catalog, tenants and
issuers, accounts and their segment, contacts, users, subscriptions, staff issuers and advisors,
license assignments, VAT number and payment method; and bad input of every kind, refused with
422 and changing nothing."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from tests.conftest import WEBINAR, Http, TestIssuer, build_app, make_world, service_token

ERROR_KEYS = {"code", "status", "error", "message"}
SUBSCRIPTION_KEYS = {"id", "account_id", "product", "plan", "licenses", "billing_period", "status",
                     "current_period_start", "current_period_end", "recurring_amount", "currency"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request, tmp_path_factory):
    """One app per database for the whole module; each test makes its own tenants."""
    tmp = tmp_path_factory.mktemp(f"admin-{request.param}")
    server = name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'gateway.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"gw_admin_{uuid.uuid4().hex[:12]}"
        with server.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.url.set(database=name).render_as_string(hide_password=False)
    app = build_app(url, tmp)
    admin = Http(app.test_client(), service_token(app))
    admin.put("/api/v1/catalog/products/webinar", json=WEBINAR)
    yield SimpleNamespace(app=app, admin=admin, dialect=request.param)
    app.extensions["gateway.db"].dispose()
    if server is not None:
        with server.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def admin(backend) -> Http:
    return backend.admin


@pytest.fixture(scope="module")
def shared(backend):
    """A tenant for the tests whose requests are refused or repeat what is already there."""
    w = make_world(backend.admin, TestIssuer.new(), unique(), vat_number="DE136695976")
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=CARD)
    assert r.status_code == 200, r.get_json()
    return w


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def world(admin: Http, **kw):
    return make_world(admin, TestIssuer.new(), unique(), **kw)


def tenant(admin: Http, *issuers: TestIssuer, **policy) -> str:
    slug = unique()
    r = admin.post("/api/v1/tenants", json={"name": slug, "slug": slug,
                                            "issuers": [i.spec() for i in issuers], "policy": policy})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def account(admin: Http, tenant_id: str, **fields) -> dict:
    body = {"name": "Account", "country": "DE", "currency": "EUR", "billing_channel": "online",
            "payment_terms": "card", **fields}
    r = admin.post(f"/api/v1/tenants/{tenant_id}/accounts", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def subscribe(admin: Http, account_id: str, **fields) -> dict:
    body = {"product": "webinar", "plan": "standard", "licenses": 5, "billing_period": "monthly",
            "status": "active", "current_period_start": "2026-02-20", **fields}
    r = admin.post(f"/api/v1/accounts/{account_id}/subscriptions", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def assert_error(r, status: int, error: str):
    assert r.status_code == status, r.get_data(as_text=True)
    body = r.get_json()
    assert ERROR_KEYS <= set(body), body
    assert (body["code"], body["error"]) == (status, error), body
    return body


# -- catalog ---------------------------------------------------------------------------------
def test_catalog_put_then_read(admin):
    code = unique("p")
    plans = [{"code": "basic", "name": "Basic", "rank": 1, "prices": [
        {"currency": "USD", "billing_period": "monthly", "unit_amount": "9.5"},
        {"currency": "EUR", "billing_period": "annual", "unit_amount": "99"}]},
        {"code": "pro", "name": "Pro", "rank": 2, "prices": []}]
    r = admin.put(f"/api/v1/catalog/products/{code}", json={"name": "Webcasts", "plans": plans})
    assert r.status_code == 200, r.get_json()
    expected = {"code": code, "name": "Webcasts", "plans": [
        {"code": "basic", "name": "Basic", "rank": 1, "prices": [
            {"currency": "EUR", "billing_period": "annual", "unit_amount": "99.00"},
            {"currency": "USD", "billing_period": "monthly", "unit_amount": "9.50"}]},
        {"code": "pro", "name": "Pro", "rank": 2, "prices": []}]}
    assert r.get_json() == expected
    assert admin.get(f"/api/v1/catalog/products/{code}").get_json() == expected
    assert expected in admin.get("/api/v1/catalog/products").get_json()


def test_catalog_put_replaces_the_plans(admin):
    code = unique("p")
    admin.put(f"/api/v1/catalog/products/{code}", json=WEBINAR)
    r = admin.put(f"/api/v1/catalog/products/{code}", json={"name": "Renamed", "plans": [
        {"code": "solo", "name": "Solo", "rank": 0, "prices": [
            {"currency": "EUR", "billing_period": "monthly", "unit_amount": "5.00"}]}]})
    assert r.status_code == 200
    stored = admin.get(f"/api/v1/catalog/products/{code}").get_json()
    assert stored["name"] == "Renamed"
    assert [p["code"] for p in stored["plans"]] == ["solo"]


def test_catalog_unknown_product(admin):
    assert_error(admin.get(f"/api/v1/catalog/products/{unique('p')}"), 404, "not_found")


def test_any_token_reads_the_catalog(shared):
    w = shared
    assert w.member.get("/api/v1/catalog/products/webinar").status_code == 200


# -- tenants and issuers ---------------------------------------------------------------------
def test_tenant_create_and_read(admin):
    issuer = TestIssuer.new()
    slug = unique()
    r = admin.post("/api/v1/tenants", json={"name": "Acme", "slug": slug, "issuers": [issuer.spec()],
                                            "policy": {"enterprise_license_threshold": 20}})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["id"] and body["name"] == "Acme" and body["slug"] == slug
    assert [(i["issuer"], i["audience"], i["jwks"]) for i in body["issuers"]] == [
        (issuer.url, issuer.audience, issuer.jwks)]
    assert body["policy"]["enterprise_license_threshold"] == 20
    assert body["policy"]["segment"] is None
    assert admin.get(f"/api/v1/tenants/{body['id']}").get_json() == body
    assert body in admin.get("/api/v1/tenants").get_json()


def test_tenants_share_an_issuer_named_with_the_same_settings(admin):
    issuer = TestIssuer.new()
    first, second = tenant(admin, issuer), tenant(admin, issuer)
    ids = {admin.get(f"/api/v1/tenants/{t}").get_json()["issuers"][0]["id"] for t in (first, second)}
    assert len(ids) == 1
    # and a contact of each tenant signs in with the one issuer
    for t in (first, second):
        acc = account(admin, t)["id"]
        admin.post(f"/api/v1/accounts/{acc}/contacts", json={
            "subject": f"boss-{t}", "name": "Boss", "email": "boss@x.example", "roles": ["billing_contact"]})
        who = admin.as_(issuer.token(f"boss-{t}")).get("/api/v1/me").get_json()
        assert [a["account_id"] for a in who["accounts"]] == [acc]


@pytest.mark.parametrize("change", [
    {"audience": "another-audience"},
    {"jwks_uri": "https://idp.example/jwks.json", "jwks": None},
    {"allow_jwt_typ": True},
    {"jwks": "other-key"},
], ids=["audience", "jwks_uri", "allow_jwt_typ", "jwks"])
def test_same_issuer_with_other_settings_conflicts(admin, change):
    issuer = TestIssuer.new()
    tenant(admin, issuer)
    spec = dict(issuer.spec(), **change)
    if change.get("jwks") == "other-key":
        spec["jwks"] = TestIssuer.new().jwks
    spec = {k: v for k, v in spec.items() if v is not None}
    before = len(admin.get("/api/v1/tenants").get_json())
    slug = unique()
    r = admin.post("/api/v1/tenants", json={"name": "Copycat", "slug": slug, "issuers": [spec]})
    assert_error(r, 409, "issuer_conflict")
    tenants = admin.get("/api/v1/tenants").get_json()
    assert len(tenants) == before and slug not in {t["slug"] for t in tenants}


def test_a_conflicting_issuer_leaves_the_other_issuers_of_the_request_unsaved(admin):
    known, fresh = TestIssuer.new(), TestIssuer.new()
    tenant(admin, known)
    r = admin.post("/api/v1/tenants", json={"name": "X", "slug": unique(), "issuers": [
        fresh.spec(), dict(known.spec(), audience="other")]})
    assert_error(r, 409, "issuer_conflict")
    # the fresh issuer was not kept: registering it with other settings is no conflict
    tenant_id = tenant(admin, TestIssuer(fresh.url, fresh.key, "yet-another-audience"))
    assert admin.get(f"/api/v1/tenants/{tenant_id}").get_json()["issuers"][0]["audience"] == \
        "yet-another-audience"


def test_patch_tenant(admin):
    tenant_id = tenant(admin, TestIssuer.new())
    extra = TestIssuer.new()
    r = admin.patch(f"/api/v1/tenants/{tenant_id}", json={
        "name": "Renamed", "policy": {"segment": "enterprise", "require_vat_number": False}})
    assert r.status_code == 200, r.get_json()
    r = admin.patch(f"/api/v1/tenants/{tenant_id}", json={"issuers": [extra.spec()]})
    assert r.status_code == 200, r.get_json()
    stored = admin.get(f"/api/v1/tenants/{tenant_id}").get_json()
    assert stored["name"] == "Renamed"
    assert stored["policy"]["segment"] == "enterprise"
    assert stored["policy"]["require_vat_number"] is False
    assert [i["issuer"] for i in stored["issuers"]] == [extra.url]


def test_patch_tenant_with_a_conflicting_issuer_changes_nothing(admin):
    known = TestIssuer.new()
    tenant(admin, known)
    tenant_id = tenant(admin, TestIssuer.new())
    before = admin.get(f"/api/v1/tenants/{tenant_id}").get_json()
    r = admin.patch(f"/api/v1/tenants/{tenant_id}", json={
        "name": "Half-done", "issuers": [dict(known.spec(), audience="other")]})
    assert_error(r, 409, "issuer_conflict")
    assert admin.get(f"/api/v1/tenants/{tenant_id}").get_json() == before


def test_duplicate_slug(admin):
    slug = unique()
    assert admin.post("/api/v1/tenants", json={"name": "A", "slug": slug}).status_code == 201
    assert_error(admin.post("/api/v1/tenants", json={"name": "B", "slug": slug}), 409, "slug_taken")


def test_unknown_tenant(admin):
    assert_error(admin.get("/api/v1/tenants/ten_0000000000000000"), 404, "not_found")
    assert_error(admin.patch("/api/v1/tenants/ten_0000000000000000", json={"name": "x"}), 404, "not_found")


# -- accounts and their segment (design.md §3.5) ---------------------------------------------
def test_account_create_and_read(admin):
    tenant_id = tenant(admin)
    created = account(admin, tenant_id, name="Acme GmbH", vat_number="DE 136 695 976",
                      credit_balance="12.50")
    assert created["id"] and created["tenant_id"] == tenant_id
    assert (created["vat_number"], created["credit_balance"]) == ("DE136695976", "12.50")
    assert created["payment_method"] is None
    read = admin.get(f"/api/v1/accounts/{created['id']}").get_json()
    assert read == created
    assert [a["id"] for a in admin.get(f"/api/v1/tenants/{tenant_id}/accounts").get_json()] == [
        created["id"]]


def test_credit_balance_keeps_its_cents(admin):
    tenant_id = tenant(admin)
    for amount, shown in (("0.01", "0.01"), ("123456789012.34", "123456789012.34"), ("7", "7.00")):
        assert account(admin, tenant_id, credit_balance=amount)["credit_balance"] == shown
    assert account(admin, tenant_id, currency="JPY", credit_balance="1500")["credit_balance"] == "1500"


def advisor(admin: Http) -> tuple[TestIssuer, str]:
    staff = TestIssuer.new()
    assert admin.post("/api/v1/staff-issuers", json=staff.spec()).status_code == 201
    r = admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "ada",
                                             "name": "Ada", "email": "ada@x.example"})
    assert r.status_code == 201, r.get_json()
    return staff, r.get_json()["id"]


@pytest.mark.parametrize(("fields", "licenses", "segment", "reason"), [
    ({}, 5, "self_serve", "no enterprise criterion"),
    ({"billing_channel": "corporate"}, 5, "enterprise", "representative"),
    ({"advisor": True}, 5, "enterprise", "advisor"),
    ({"payment_terms": "invoice"}, 5, "enterprise", "invoice"),
    ({}, 100, "enterprise", "100 active licenses reach the enterprise threshold of 100"),
    ({}, 99, "self_serve", "no enterprise criterion"),
    ({"billing_channel": "corporate", "payment_terms": "invoice"}, 5, "enterprise", "representative"),
], ids=["self-serve", "corporate", "advisor", "invoice", "threshold-reached", "below-threshold",
        "first-rule-leads"])
def test_segment_and_its_reasons(admin, fields, licenses, segment, reason):
    tenant_id = tenant(admin)
    fields = dict(fields)
    if fields.pop("advisor", False):
        fields["advisor_id"] = advisor(admin)[1]
    acc = account(admin, tenant_id, **fields)
    subscribe(admin, acc["id"], licenses=licenses)
    body = admin.get(f"/api/v1/accounts/{acc['id']}").get_json()
    assert body["segment"] == segment
    assert reason in body["segment_reasons"][0]


def test_only_active_subscriptions_count_toward_the_threshold(admin):
    acc = account(admin, tenant(admin))["id"]
    subscribe(admin, acc, licenses=150, status="trial")
    subscribe(admin, acc, licenses=150, status="expired")
    subscribe(admin, acc, licenses=60)
    assert admin.get(f"/api/v1/accounts/{acc}").get_json()["segment"] == "self_serve"
    subscribe(admin, acc, licenses=40)
    assert admin.get(f"/api/v1/accounts/{acc}").get_json()["segment"] == "enterprise"


@pytest.mark.parametrize(("licenses", "segment"), [(9, "self_serve"), (10, "enterprise")])
def test_tenant_threshold_override(admin, licenses, segment):
    acc = account(admin, tenant(admin, enterprise_license_threshold=10))["id"]
    subscribe(admin, acc, licenses=licenses)
    body = admin.get(f"/api/v1/accounts/{acc}").get_json()
    assert body["segment"] == segment
    if segment == "enterprise":
        assert "threshold of 10" in body["segment_reasons"][0]


@pytest.mark.parametrize(("pinned", "fields", "segment"), [
    ("enterprise", {}, "enterprise"),
    ("self_serve", {"billing_channel": "corporate", "payment_terms": "invoice"}, "self_serve"),
])
def test_pinned_segment(admin, pinned, fields, segment):
    acc = account(admin, tenant(admin, segment=pinned), **fields)["id"]
    body = admin.get(f"/api/v1/accounts/{acc}").get_json()
    assert (body["segment"], body["segment_reasons"]) == (segment, ["segment pinned by tenant policy"])


def test_policy_change_reclassifies_existing_accounts(admin):
    tenant_id = tenant(admin)
    acc = account(admin, tenant_id)["id"]
    subscribe(admin, acc, licenses=20)
    assert admin.get(f"/api/v1/accounts/{acc}").get_json()["segment"] == "self_serve"
    admin.patch(f"/api/v1/tenants/{tenant_id}", json={"policy": {"enterprise_license_threshold": 20}})
    assert admin.get(f"/api/v1/accounts/{acc}").get_json()["segment"] == "enterprise"
    admin.patch(f"/api/v1/tenants/{tenant_id}", json={"policy": {"enterprise_license_threshold": None}})
    assert admin.get(f"/api/v1/accounts/{acc}").get_json()["segment"] == "self_serve"


# -- contacts and users ----------------------------------------------------------------------
def test_contact_roles_follow_the_latest_post(admin):
    issuer = TestIssuer.new()
    acc = account(admin, tenant(admin, issuer))["id"]
    r = admin.post(f"/api/v1/accounts/{acc}/contacts", json={
        "subject": "sam", "name": "Sam", "email": "sam@x.example", "roles": ["user"]})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["id"] and body["issuer"] == issuer.url and body["roles"] == ["user"]
    sam = admin.as_(issuer.token("sam"))
    assert sam.get("/api/v1/me").get_json()["accounts"][0]["roles"] == ["user"]
    vat = {"vat_number": "DE136695976"}
    assert sam.put(f"/api/v1/accounts/{acc}/vat-number", json=vat).status_code == 403
    r = admin.post(f"/api/v1/accounts/{acc}/contacts", json={
        "subject": "sam", "name": "Sam", "email": "sam@x.example", "roles": ["billing_contact", "user"]})
    assert r.status_code == 201 and r.get_json()["id"] == body["id"]
    assert sam.get("/api/v1/me").get_json()["accounts"][0]["roles"] == ["billing_contact", "user"]
    assert sam.put(f"/api/v1/accounts/{acc}/vat-number", json=vat).status_code == 200


def test_contact_issuer_must_be_named_when_the_tenant_trusts_several(admin):
    one, two = TestIssuer.new(), TestIssuer.new()
    acc = account(admin, tenant(admin, one, two))["id"]
    body = {"subject": "sam", "name": "Sam", "email": "sam@x.example", "roles": ["user"]}
    assert_error(admin.post(f"/api/v1/accounts/{acc}/contacts", json=body), 422, "issuer_required")
    r = admin.post(f"/api/v1/accounts/{acc}/contacts", json=dict(body, issuer=two.url))
    assert r.status_code == 201 and r.get_json()["issuer"] == two.url
    assert admin.as_(two.token("sam")).get("/api/v1/me").get_json()["accounts"]
    assert admin.as_(one.token("sam")).get("/api/v1/me").get_json()["accounts"] == []


def test_contact_issuer_the_tenant_does_not_trust(admin):
    acc = account(admin, tenant(admin))["id"]
    r = admin.post(f"/api/v1/accounts/{acc}/contacts", json={
        "subject": "sam", "name": "Sam", "email": "sam@x.example", "roles": ["user"],
        "issuer": TestIssuer.new().url})
    assert_error(r, 422, "unknown_issuer")


def test_users(admin):
    acc = account(admin, tenant(admin))["id"]
    r = admin.post(f"/api/v1/accounts/{acc}/users", json={"name": "Una", "email": "una@x.example"})
    assert r.status_code == 201, r.get_json()
    user = r.get_json()
    assert user["id"] and (user["account_id"], user["name"], user["email"]) == (acc, "Una", "una@x.example")
    assert [u["id"] for u in admin.get(f"/api/v1/accounts/{acc}/users").get_json()] == [user["id"]]


# -- subscriptions ---------------------------------------------------------------------------
@pytest.mark.parametrize(("period", "start", "end"), [
    ("monthly", "2026-02-20", "2026-03-20"),
    ("monthly", "2026-01-31", "2026-02-28"),
    ("monthly", "2024-01-31", "2024-02-29"),
    ("monthly", "2026-12-15", "2027-01-15"),
    ("annual", "2024-02-29", "2025-02-28"),
    ("annual", "2026-02-20", "2027-02-20"),
])
def test_subscription_period_end_defaults_to_start_plus_period(admin, period, start, end):
    acc = account(admin, tenant(admin))["id"]
    sub = subscribe(admin, acc, billing_period=period, current_period_start=start)
    assert (sub["current_period_start"], sub["current_period_end"]) == (start, end)


def test_subscription_explicit_period_end(admin):
    acc = account(admin, tenant(admin))["id"]
    sub = subscribe(admin, acc, current_period_start="2026-02-20", current_period_end="2026-03-01")
    assert sub["current_period_end"] == "2026-03-01"


@pytest.mark.parametrize(("currency", "plan", "licenses", "period", "amount"), [
    ("EUR", "standard", 5, "monthly", "145.00"),
    ("EUR", "business", 3, "annual", "122.50"),  # monthly equivalent (docs/decisions.md)
    ("EUR", "free", 7, "monthly", "0.00"),
    ("USD", "lite", 2, "monthly", "38.00"),
])
def test_subscription_reads_with_its_recurring_amount(admin, currency, plan, licenses, period, amount):
    acc = account(admin, tenant(admin), currency=currency, country="US")["id"]
    sub = subscribe(admin, acc, plan=plan, licenses=licenses, billing_period=period)
    assert set(sub) == SUBSCRIPTION_KEYS
    assert (sub["account_id"], sub["product"], sub["plan"], sub["licenses"], sub["billing_period"],
            sub["status"]) == (acc, "webinar", plan, licenses, period, "active")
    assert (sub["recurring_amount"], sub["currency"]) == (amount, currency)
    assert admin.get(f"/api/v1/subscriptions/{sub['id']}").get_json() == sub
    assert admin.get(f"/api/v1/accounts/{acc}/subscriptions").get_json() == [sub]


@pytest.mark.parametrize(("currency", "plan", "period"), [
    ("USD", "lite", "annual"),  # no USD annual price for lite
    ("GBP", "standard", "monthly"),  # no GBP prices at all
])
def test_a_subscription_without_a_catalog_price_is_refused(admin, currency, plan, period):
    acc = account(admin, tenant(admin), currency=currency, country="US")["id"]
    body = {"product": "webinar", "plan": plan, "licenses": 2, "billing_period": period,
            "status": "active", "current_period_start": "2026-02-20"}
    r = admin.post(f"/api/v1/accounts/{acc}/subscriptions", json=body)
    assert r.status_code == 422 and r.get_json()["error"] == "price_unavailable"
    assert admin.get(f"/api/v1/accounts/{acc}/subscriptions").get_json() == []


def test_contacts_read_their_subscriptions(shared):
    w = shared
    for who in (w.billing, w.member):
        r = who.get(f"/api/v1/subscriptions/{w.subscription_id}")
        assert r.status_code == 200 and r.get_json()["id"] == w.subscription_id
        assert [s["id"] for s in who.get(f"/api/v1/accounts/{w.account_id}/subscriptions").get_json()] == [
            w.subscription_id]


# -- staff issuers and advisors --------------------------------------------------------------
def test_advisor_token_is_an_advisor(admin):
    staff, advisor_id = advisor(admin)
    who = admin.as_(staff.token("ada")).get("/api/v1/me")
    assert who.status_code == 200
    body = who.get_json()
    assert body["kind"] == "advisor"
    assert body["advisor"]["id"] == advisor_id
    assert body["advisor"]["pool"] == "corporate-account-services"
    assert body["accounts"] == []


def test_advisor_with_its_own_pool(admin):
    staff = TestIssuer.new()
    admin.post("/api/v1/staff-issuers", json=staff.spec())
    r = admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "bo", "name": "Bo",
                                             "email": "bo@x.example", "pool": "dach"})
    assert r.status_code == 201
    assert r.get_json()["pool"] == "dach"
    assert admin.as_(staff.token("bo")).get("/api/v1/me").get_json()["advisor"]["pool"] == "dach"


def test_advisor_needs_a_staff_issuer(admin):
    issuer = TestIssuer.new()
    tenant(admin, issuer)  # trusted for contacts, not for staff
    r = admin.post("/api/v1/advisors", json={"issuer": issuer.url, "subject": "eve", "name": "Eve",
                                             "email": "eve@x.example"})
    assert_error(r, 422, "unknown_issuer")


def test_advisor_registered_twice(admin):
    staff, _ = advisor(admin)
    r = admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "ada", "name": "Ada",
                                             "email": "ada@x.example"})
    assert_error(r, 409, "advisor_exists")


def test_staff_issuer_with_the_settings_of_a_tenant_issuer_is_reused(admin):
    issuer = TestIssuer.new()
    tenant_id = tenant(admin, issuer)
    r = admin.post("/api/v1/staff-issuers", json=issuer.spec())
    assert r.status_code == 201
    assert r.get_json()["id"] == admin.get(f"/api/v1/tenants/{tenant_id}").get_json()["issuers"][0]["id"]
    assert_error(admin.post("/api/v1/staff-issuers", json=dict(issuer.spec(), audience="x")),
                 409, "issuer_conflict")


# -- license assignments ---------------------------------------------------------------------
def users(admin: Http, account_id: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        r = admin.post(f"/api/v1/accounts/{account_id}/users",
                       json={"name": f"U{i}", "email": f"u{i}@x.example"})
        out.append(r.get_json()["id"])
    return out


def test_license_assignment(admin):
    w = world(admin, licenses=2)
    path = f"/api/v1/subscriptions/{w.subscription_id}/licenses"
    u1, u2, u3 = users(admin, w.account_id, 3)
    assert admin.get(path).get_json() == {"subscription_id": w.subscription_id, "total": 2,
                                          "assigned": 0, "unassigned": 2, "assignments": []}
    r = w.billing.post(path, json={"user_id": u1})
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["user_id"], r.get_json()["subscription_id"]) == (u1, w.subscription_id)
    assert admin.post(path, json={"user_id": u2}).status_code == 201
    summary = admin.get(path).get_json()
    assert (summary["total"], summary["assigned"], summary["unassigned"]) == (2, 2, 0)
    assert [a["user_id"] for a in summary["assignments"]] == [u1, u2]
    assert all(a["assigned_at"] for a in summary["assignments"])
    assert_error(w.billing.post(path, json={"user_id": u3}), 409, "no_license_available")
    assert_error(w.billing.post(path, json={"user_id": u1}), 409, "already_assigned")
    assert w.billing.delete(f"{path}/{u1}").status_code == 204
    assert_error(w.billing.delete(f"{path}/{u1}"), 404, "not_found")
    assert (admin.get(path).get_json()["assigned"], admin.get(path).get_json()["unassigned"]) == (1, 1)
    assert w.billing.post(path, json={"user_id": u3}).status_code == 201
    assert [a["user_id"] for a in admin.get(path).get_json()["assignments"]] == [u2, u3]


def test_license_assignment_rights(admin, backend):
    w = world(admin, licenses=2)
    path = f"/api/v1/subscriptions/{w.subscription_id}/licenses"
    (u1,) = users(admin, w.account_id, 1)
    assert w.member.get(path).status_code == 200
    assert_error(w.member.post(path, json={"user_id": u1}), 403, "not_billing_contact")
    reader = Http(backend.app.test_client(), service_token(backend.app, "read"))
    assert reader.get(path).status_code == 200
    assert_error(reader.post(path, json={"user_id": u1}), 403, "insufficient_scope")
    assert admin.get(path).get_json()["assigned"] == 0


def test_license_for_a_user_of_another_account(admin):
    w = world(admin)
    other = account(admin, w.tenant_id)["id"]
    (stranger,) = users(admin, other, 1)
    r = w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/licenses", json={"user_id": stranger})
    assert_error(r, 422, "unknown_user")


# -- VAT number and payment method -----------------------------------------------------------
@pytest.mark.parametrize("raw", ["de 136 695 976", "DE136695976", "DE 136-695-976", " de136695976 ",
                                 "136695976", "136 695 976"])
def test_vat_number_is_normalised(admin, raw):
    w = world(admin)
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/vat-number", json={"vat_number": raw})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"vat_number": "DE136695976", "country": "DE", "valid": True,
                            "vat_status": "valid"}
    assert admin.get(f"/api/v1/accounts/{w.account_id}").get_json()["vat_number"] == "DE136695976"


@pytest.mark.parametrize("raw", ["DE136695977", "DE13669597", "FR40303265045", "XX123", "hello"],
                         ids=["check-digit", "too-short", "other-country", "unknown-prefix", "garbage"])
def test_invalid_vat_number(admin, shared, raw):
    w = shared
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/vat-number", json={"vat_number": raw})
    body = assert_error(r, 422, "invalid_vat_number")
    assert body["errors"]["vat_number"]
    assert admin.get(f"/api/v1/accounts/{w.account_id}").get_json()["vat_number"] == "DE136695976"


CARD = {"token": "pm_tok_visa_4242", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}


def test_payment_method_keeps_only_what_identifies_the_card(admin):
    w = world(admin)
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=CARD)
    assert r.status_code == 200, r.get_json()
    shown = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030, "expired": False}
    assert r.get_json() == shown
    acc = admin.get(f"/api/v1/accounts/{w.account_id}")
    assert acc.get_json()["payment_method"] == shown
    assert CARD["token"] not in acc.get_data(as_text=True)


def test_expired_card_says_so(admin):
    w = world(admin)
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method",
                      json=dict(CARD, exp_month=1, exp_year=2020))
    assert r.get_json()["expired"] is True


@pytest.mark.parametrize("token", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
                                   "4222222222222", "6011000990139424000"],
                         ids=["16-digits", "spaces", "dashes", "13-digits", "19-digits"])
def test_raw_card_number_is_refused(admin, shared, token):
    w = shared
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json=dict(CARD, token=token))
    assert_error(r, 422, "raw_card_data_refused")
    acc = admin.get(f"/api/v1/accounts/{w.account_id}").get_json()
    assert acc["payment_method"]["last4"] == "4242"


# -- bad input: 422 with errors, and nothing changes -----------------------------------------
@pytest.fixture(scope="module")
def target(backend):
    """A tenant whose every readable part is compared before and after each bad request."""
    w = make_world(backend.admin, TestIssuer.new(), unique())
    (user,) = users(backend.admin, w.account_id, 1)
    target = SimpleNamespace(world=w, user=user, engine=backend.app.extensions["gateway.db"].engine)
    target.baseline = snapshot(backend.admin, target)  # what every refused request leaves as is
    return target


def snapshot(admin: Http, target) -> dict:
    """What the API shows of the target, and how many rows every table holds."""
    from sqlalchemy import func, select

    from gateway.schema import metadata

    w = target.world
    paths = [f"/api/v1/tenants/{w.tenant_id}", f"/api/v1/tenants/{w.tenant_id}/accounts",
             f"/api/v1/accounts/{w.account_id}/subscriptions", f"/api/v1/accounts/{w.account_id}/users",
             f"/api/v1/subscriptions/{w.subscription_id}/licenses", "/api/v1/catalog/products"]
    shown = {p: admin.get(p).get_json() for p in paths}
    with target.engine.connect() as c:
        counts = {t.name: c.scalar(select(func.count()).select_from(t)) for t in metadata.sorted_tables}
    return {"shown": shown, "rows": counts}


def assert_unchanged(admin: Http, target) -> None:
    after = snapshot(admin, target)
    before, target.baseline = target.baseline, after  # one change fails one test, not all after it
    assert after == before


GOOD_ACCOUNT = {"name": "A", "country": "DE", "currency": "EUR", "billing_channel": "online",
                "payment_terms": "card"}
GOOD_SUB = {"product": "webinar", "plan": "lite", "licenses": 1, "billing_period": "monthly",
            "status": "active", "current_period_start": "2026-01-01"}
GOOD_PLANS = [{"code": "basic", "name": "Basic", "rank": 0, "prices": [
    {"currency": "EUR", "billing_period": "monthly", "unit_amount": "1.00"}]}]


ACCOUNTS = "/api/v1/tenants/{tenant}/accounts"
SUBS = "/api/v1/accounts/{account}/subscriptions"


def price(**change):
    return {"name": "W", "plans": [dict(GOOD_PLANS[0], prices=[dict(GOOD_PLANS[0]["prices"][0], **change)])]}


BAD = [
    # tenants
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "extra": 1}, "extra"),
    ("POST", "/api/v1/tenants", {"name": 7, "slug": "x-1"}, "name"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "Not A Slug"}, "slug"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "issuers": {}}, "issuers"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "policy": {"segment": "gold"}}, "policy"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "policy": {"colour": "red"}}, "policy"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1",
                                 "policy": {"enterprise_license_threshold": 0}}, "policy"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1",
                                 "policy": {"enterprise_license_threshold": 10**12}}, "policy"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1",
                                 "policy": {"enterprise_license_threshold": "10"}}, "policy"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "issuers": [
        {"issuer": "https://i.example", "audience": "a"}]}, "issuers"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "issuers": [
        {"issuer": "not a url", "audience": "a", "jwks": {"keys": [{"kty": "RSA"}]}}]}, "issuers"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "issuers": [
        {"issuer": "https://i.example/" + "a" * 600, "audience": "a",
         "jwks_uri": "https://i.example/jwks"}]}, "issuers"),
    ("POST", "/api/v1/tenants", {"name": "X", "slug": "x-1", "issuers": [
        {"issuer": "https://i.example", "audience": "a", "jwks": {"keys": [{"kty": "RSA"}]}}]}, "jwks"),
    ("PATCH", "/api/v1/tenants/{tenant}", {"slug": "renamed"}, "slug"),
    ("PATCH", "/api/v1/tenants/{tenant}", {"policy": {"require_vat_number": "maybe"}}, "policy"),
    # accounts
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, currency="XYZ"), "currency"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, currency="eur"), "currency"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, country="ZZ"), "country"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, country="Germany"), "country"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, billing_channel="fax"), "billing_channel"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, payment_terms="barter"), "payment_terms"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, credit_balance="-5.00"), "credit_balance"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, credit_balance=12.5), "credit_balance"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, credit_balance="ten"), "credit_balance"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, credit_balance="NaN"), "credit_balance"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, credit_balance="1.005"),
     "credit_balance"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, credit_balance="1e30"), "credit_balance"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, vat_number="DE136695977"), "vat_number"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, advisor_id="adv_nobody"), "advisor_id"),
    ("POST", ACCOUNTS, dict(GOOD_ACCOUNT, owner="me"), "owner"),
    ("POST", ACCOUNTS, {"name": "A"}, "country"),
    ("POST", ACCOUNTS, ["not", "an", "object"], None),
    # contacts and users
    ("POST", "/api/v1/accounts/{account}/contacts", {"subject": "s", "name": "n", "email": "not-an-email",
                                                     "roles": ["user"]}, "email"),
    ("POST", "/api/v1/accounts/{account}/contacts", {"subject": "s", "name": "n", "email": "s@x.example",
                                                     "roles": ["owner"]}, "roles"),
    ("POST", "/api/v1/accounts/{account}/contacts", {"subject": "s", "name": "n", "email": "s@x.example",
                                                     "roles": []}, "roles"),
    ("POST", "/api/v1/accounts/{account}/contacts", {"subject": "s", "name": "n", "email": "s@x.example",
                                                     "roles": "user"}, "roles"),
    ("POST", "/api/v1/accounts/{account}/users", {"name": "n", "email": "a" * 320 + "@b.example"}, "email"),
    ("POST", "/api/v1/accounts/{account}/users", {"name": "n"}, "email"),
    # subscriptions
    ("POST", SUBS, dict(GOOD_SUB, licenses=-1), "licenses"),
    ("POST", SUBS, dict(GOOD_SUB, licenses=0), "licenses"),
    ("POST", SUBS, dict(GOOD_SUB, licenses="5"), "licenses"),
    ("POST", SUBS, dict(GOOD_SUB, licenses=2.5), "licenses"),
    ("POST", SUBS, dict(GOOD_SUB, licenses=True), "licenses"),
    ("POST", SUBS, dict(GOOD_SUB, licenses=10**12), "licenses"),
    ("POST", SUBS, dict(GOOD_SUB, plan="platinum"), "plan"),
    ("POST", SUBS, dict(GOOD_SUB, product="nope"), "product"),
    ("POST", SUBS, dict(GOOD_SUB, billing_period="weekly"),
     "billing_period"),
    ("POST", SUBS, dict(GOOD_SUB, status="paused"), "status"),
    ("POST", SUBS, dict(GOOD_SUB, current_period_start="2026-13-01"),
     "current_period_start"),
    ("POST", SUBS, dict(GOOD_SUB, current_period_start="9999-12-15"),
     "current_period_start"),
    ("POST", SUBS, dict(GOOD_SUB, current_period_end="2025-12-31"),
     "current_period_end"),
    # catalog
    ("PUT", "/api/v1/catalog/products/webinar", {"name": "W", "plans": []}, "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", {"name": "W", "plans": [dict(GOOD_PLANS[0], colour=1)]},
     "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", {"name": "W", "plans": [dict(GOOD_PLANS[0], rank="1")]},
     "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", {"name": "W", "plans": GOOD_PLANS * 2}, "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", price(currency="XYZ"), "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", price(billing_period="weekly"), "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", price(unit_amount="-1.00"), "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", price(unit_amount=1.5), "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", price(unit_amount="0.123456"), "plans"),
    ("PUT", "/api/v1/catalog/products/webinar", price(unit_amount="99999999999999999999999"), "plans"),
    ("PUT", "/api/v1/catalog/products/" + "x" * 80, {"name": "W", "plans": GOOD_PLANS}, "code"),
    ("PUT", "/api/v1/catalog/products/Not%20A%20Code", {"name": "W", "plans": GOOD_PLANS}, "code"),
    # staff issuers and advisors
    ("POST", "/api/v1/staff-issuers", {"issuer": "https://s.example", "audience": "a"}, "jwks_uri"),
    ("POST", "/api/v1/advisors", {"issuer": "https://nobody.example", "subject": "a", "name": "A",
                                  "email": "a@x.example"}, "issuer"),
    ("POST", "/api/v1/advisors", {"issuer": "https://nobody.example", "subject": "a", "name": "A",
                                  "email": "a@x.example", "pool": ""}, "pool"),
    # licenses, VAT number, payment method
    ("POST", "/api/v1/subscriptions/{subscription}/licenses", {"user_id": "usr_nobody"}, "user_id"),
    ("POST", "/api/v1/subscriptions/{subscription}/licenses", {"user_id": 12}, "user_id"),
    ("POST", "/api/v1/subscriptions/{subscription}/licenses", {"user": "{user}"}, "user"),
    ("PUT", "/api/v1/accounts/{account}/vat-number", {"vat_number": 136695976}, "vat_number"),
    ("PUT", "/api/v1/accounts/{account}/vat-number", {}, "vat_number"),
    ("PUT", "/api/v1/accounts/{account}/payment-method", dict(CARD, token="4111111111111111"), "token"),
    ("PUT", "/api/v1/accounts/{account}/payment-method", dict(CARD, exp_month=13), "exp_month"),
    ("PUT", "/api/v1/accounts/{account}/payment-method", dict(CARD, exp_month="12"), "exp_month"),
    ("PUT", "/api/v1/accounts/{account}/payment-method", dict(CARD, last4="42"), "last4"),
    ("PUT", "/api/v1/accounts/{account}/payment-method", dict(CARD, number="4111111111111111"), "number"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD,
                         ids=[f"{m} {p.split('/api/v1/')[-1][:40]} {f}" for m, p, _, f in BAD])
def test_bad_input_is_422_and_changes_nothing(admin, target, method, path, body, field):
    w = target.world
    ids = {"tenant": w.tenant_id, "account": w.account_id, "subscription": w.subscription_id,
           "user": target.user}
    path = path.format(**ids)
    if isinstance(body, dict):
        body = {k: (v.format(**ids) if isinstance(v, str) and v.startswith("{") else v)
                for k, v in body.items()}
    r = admin.call(method, path, json=body)
    assert_unchanged(admin, target)
    assert r.status_code == 422, r.get_data(as_text=True)
    err = r.get_json()
    assert ERROR_KEYS <= set(err) and err["code"] == 422 and err["status"] == "Unprocessable Entity"
    assert isinstance(err.get("errors"), dict) and err["errors"], err
    if field is not None:
        assert field in err["errors"], err["errors"]


@pytest.mark.parametrize("data", ["{not json", "name=x"], ids=["broken-json", "form-encoded"])
def test_a_body_that_is_not_json_is_refused(admin, target, data):
    content_type = "application/json" if data.startswith("{") else "application/x-www-form-urlencoded"
    r = admin.client.post(f"/api/v1/tenants/{target.world.tenant_id}/accounts", data=data,
                          headers={"Authorization": f"Bearer {admin.token}", "Content-Type": content_type})
    assert r.status_code in (400, 415, 422), r.get_data(as_text=True)
    assert ERROR_KEYS <= set(r.get_json())
    assert_unchanged(admin, target)


@pytest.mark.parametrize(("sent", "shown"), [("29", "29.00"), ("29.5", "29.50"), ("0.1234", "0.1234")])
def test_catalog_shows_prices_with_every_digit_that_counts(admin, sent, shown):
    r = admin.put("/api/v1/catalog/products/precise", json={"name": "Precise", "plans": [
        {"code": "one", "name": "One", "rank": 0, "prices": [
            {"currency": "EUR", "billing_period": "monthly", "unit_amount": sent}]}]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["plans"][0]["prices"][0]["unit_amount"] == shown
