"""Hostile input, as an attacker would send it: each case gets its exact status and stable
code, never a 5xx, and writes nothing. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import func, select

from tests.conftest import WEBINAR, Http, TestIssuer, build_app, make_world, service_token


@pytest.fixture
def hostile(db_url, tmp_path):
    app = build_app(db_url, tmp_path, FROZEN_TODAY="2026-03-10")
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "hostile", country="US", currency="USD")
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    yield app, admin, w
    app.extensions["gateway.db"].dispose()


def rows(app) -> dict:
    """Row counts of every table, and the catalog's and tenants' contents: 'nothing written'."""
    from gateway.schema import metadata
    from tenants.models import Issuer, Plan, Price, TenantIssuer

    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        try:
            counts = {t.name: db.scalar(select(func.count()).select_from(t))
                      for t in metadata.sorted_tables}
            counts["prices"] = sorted(db.execute(select(Plan.code, Price.currency,
                                                        Price.billing_period, Price.unit_amount)
                                                 .join(Price)).all())
            counts["trust"] = sorted(db.execute(select(TenantIssuer.tenant_id, Issuer.url)
                                                .join(Issuer)).all())
            return counts
        finally:
            db.close()


def refused(r, status: int, error: str) -> dict:
    body = r.get_json()
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:500])
    assert body["error"] == error and body["code"] == status, body
    assert "browser (or proxy)" not in body["message"]
    return body


def raw(http: Http, method: str, path: str, data, content_type="application/json", **headers):
    if http.token:
        headers["Authorization"] = f"Bearer {http.token}"
    return http.client.open(path, method=method, data=data, content_type=content_type,
                            headers=headers)


def order_path(w) -> str:
    return f"/api/v1/accounts/{w.account_id}/orders"


def order_body(w) -> dict:
    return {"items": [{"subscription_id": w.subscription_id, "plan": "business"}]}


# -- parser limits ---------------------------------------------------------------------------
def test_a_body_over_one_mib_is_413(hostile):
    app, admin, w = hostile
    before = rows(app)
    big = json.dumps({"name": "x" * (1024 * 1024), "slug": "big"})
    refused(raw(admin, "POST", "/api/v1/tenants", big), 413, "payload_too_large")
    refused(raw(admin.as_(None), "POST", "/api/v1/tenants", big), 413, "payload_too_large")
    assert rows(app) == before


def test_a_body_that_is_not_json_typed_is_415(hostile):
    app, admin, w = hostile
    before = rows(app)
    r = raw(admin, "POST", "/api/v1/tenants", "name=x&slug=y",
            content_type="application/x-www-form-urlencoded")
    refused(r, 415, "unsupported_media_type")
    refused(raw(admin, "POST", "/api/v1/tenants", '{"name": "T", "slug": "t"}',
                content_type="text/plain"), 415, "unsupported_media_type")
    assert rows(app) == before


@pytest.mark.parametrize("text, says", [
    ('{"name": "T", "slug": ', "not valid JSON"),
    ('{"name": "T", "name": "U", "slug": "dup"}', "twice"),
    ('{"name": ' + "[" * 1000 + "]" * 1000 + ', "slug": "deep"}', "deeper than 64"),
    ('{"name": "T", "slug": "n", "policy": {"case_due_hours": ' + "9" * 4301 + "}}", "31"),
    ('{"name": "T", "slug": "n", "policy": {"case_due_hours": NaN}}', "NaN"),
    (b'{"name": "\xff\xfe", "slug": "bytes"}', "UTF-8"),
])
def test_json_the_strict_loader_refuses_is_400_invalid_json(hostile, text, says):
    app, admin, w = hostile
    before = rows(app)
    body = refused(raw(admin, "POST", "/api/v1/tenants", text), 400, "invalid_json")
    assert says.replace("31", "30 digits") in body["message"], body
    assert rows(app) == before


def test_nesting_of_64_is_still_parsed():
    from gateway.jsonio import InvalidJSON, strict_loads

    assert strict_loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(InvalidJSON):
        strict_loads("[" * 65 + "]" * 65)
    assert strict_loads('{"a": "[[[[["}') == {"a": "[[[[["}  # brackets in strings do not count


@pytest.mark.parametrize("value", ["a\u0000b", "\ud800", "ok\udfffok"])
def test_nul_and_lone_surrogates_in_body_strings_are_422(hostile, value):
    app, admin, w = hostile
    before = rows(app)
    text = json.dumps({"name": value, "slug": "nul"})  # ASCII escapes: \\u0000, \\ud800
    body = refused(raw(admin, "POST", "/api/v1/tenants", text), 422, "validation_error")
    assert "name" in body["errors"]
    text = json.dumps({"items": [{"subscription_id": w.subscription_id, "plan": value}]})
    body = refused(raw(w.billing, "POST", order_path(w), text, **{"Idempotency-Key": "n"}),
                   422, "validation_error")
    assert "items.0.plan" in body["errors"]
    assert rows(app) == before


@pytest.mark.parametrize("path", ["/api/v1/orders/%00", "/api/v1/accounts/a%00b",
                                  "/api/v1/subscriptions/%00/licenses",
                                  "/api/v1/tenants/%00", "/api/v1/catalog/products/%00"])
def test_nul_in_a_path_id_is_404(hostile, path):
    app, admin, w = hostile
    refused(admin.get(path), 404, "not_found")


def test_nul_in_a_header_or_query_is_422(hostile):
    app, admin, w = hostile
    before = rows(app)
    body = refused(w.billing.post(order_path(w), json=order_body(w),
                                  headers={"Idempotency-Key": "k\x00"}), 422, "invalid_header")
    assert "Idempotency-Key" in body["errors"]
    body = refused(admin.get("/api/v1/advisor/cases?status=%00"), 422, "validation_error")
    assert body["errors"] == {"status": ["Must not contain NUL bytes or lone surrogates."]}
    assert rows(app) == before


@pytest.mark.parametrize("after", [str(2**31), str(2**40), str(2**70), "abc", "-1", "1.5", ""])
def test_the_event_cursor_is_an_event_id_or_422(hostile, after):
    app, admin, w = hostile
    body = refused(admin.get(f"/api/v1/events?after={after}"), 422, "validation_error")
    assert "after" in body["errors"]
    assert body["message"] == "The query string is not valid."


# -- tokens ----------------------------------------------------------------------------------
def _b64(obj) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("payload", [
    '{"iss": ' + "[" * 1000 + "]" * 1000 + "}",
    '{"iss": 1' + "0" * 5000 + "}",
    '{"iss": "https://idp.example\\u0000", "sub": "x"}',
    '{"iss": "https://idp.example", "iss": "https://other.example"}',
])
def test_hostile_token_payloads_are_401_malformed(hostile, payload):
    app, admin, w = hostile
    token = f"{_b64({'alg': 'RS256', 'typ': 'at+jwt', 'kid': 'k'})}.{_b64(payload)}.c2ln"
    body = refused(admin.as_(token).get("/api/v1/me"), 401, "invalid_token")
    assert body["reason"] == "malformed"


def test_a_nul_in_a_signed_tokens_iss_never_reaches_a_query(hostile):
    app, admin, w = hostile
    body = refused(admin.as_(w.issuer.token("billing@hostile", iss=w.issuer.url + "\x00"))
                   .get("/api/v1/me"), 401, "invalid_token")
    assert body["reason"] == "malformed"


def test_an_oversized_token_is_refused_before_parsing(hostile):
    app, admin, w = hostile
    body = refused(admin.as_("a" * 9000 + ".b.c").get("/api/v1/me"), 401, "invalid_token")
    assert body["reason"] == "malformed"


@pytest.mark.parametrize("client_id", ["cli\x00x", "c" * 500])
def test_odd_client_ids_at_the_token_endpoint_are_invalid_client(hostile, client_id):
    app, admin, w = hostile
    r = app.test_client().post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": "s"})
    refused(r, 401, "invalid_client")


# -- what the columns hold -------------------------------------------------------------------
def test_a_long_issuer_url_and_subject_still_place_orders(hostile):
    app, admin, w = hostile
    issuer = TestIssuer.new()
    issuer.url = "https://idp.example/" + "i" * 470
    r = admin.patch(f"/api/v1/tenants/{w.tenant_id}", json={"issuers": [
        {"issuer": w.issuer.url, "audience": w.issuer.audience, "jwks": w.issuer.jwks},
        issuer.spec()]})
    assert r.status_code == 200, r.get_json()
    subject = "s" * 255
    r = admin.post(f"/api/v1/accounts/{w.account_id}/contacts", json={
        "subject": subject, "issuer": issuer.url, "name": "Long", "email": "long@x.example",
        "roles": ["billing_contact"]})
    assert r.status_code == 201, r.get_json()
    r = admin.as_(issuer.token(subject)).post(order_path(w), json=order_body(w),
                                              headers={"Idempotency-Key": "long"})
    assert r.status_code == 201, r.get_json()


@pytest.mark.parametrize("field, value", [
    ("issuer", "https://" + "i" * 600 + ".example"), ("subject", "s" * 256),
    ("name", "n" * 201), ("email", "e" * 320 + "@x.example")])
def test_strings_longer_than_their_columns_are_422(hostile, field, value):
    app, admin, w = hostile
    before = rows(app)
    contact = {"subject": "s", "name": "n", "email": "e@x.example", "roles": ["user"]}
    contact[field] = value
    body = refused(admin.post(f"/api/v1/accounts/{w.account_id}/contacts", json=contact),
                   422, "validation_error")
    assert field in body["errors"]
    assert rows(app) == before


def test_licenses_and_amounts_have_maxima(hostile):
    app, admin, w = hostile
    before = rows(app)
    body = refused(w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes",
                                  json={"licenses": 100_001}), 422, "validation_error")
    assert "licenses" in body["errors"]
    product = json.loads(json.dumps(WEBINAR))
    product["plans"][0]["prices"][0]["unit_amount"] = "1000000000000"  # 13 digits
    body = refused(admin.put("/api/v1/catalog/products/webinar", json=product),
                   422, "validation_error")
    assert rows(app) == before


def test_an_order_whose_total_would_overflow_the_column_is_refused(hostile):
    app, admin, w = hostile
    product = json.loads(json.dumps(WEBINAR))
    for plan in product["plans"]:
        if plan["code"] == "business":
            for price in plan["prices"]:
                price["unit_amount"] = "999999999999.99"
    assert admin.put("/api/v1/catalog/products/webinar", json=product).status_code == 200
    before = rows(app)
    body = {"items": [{"subscription_id": w.subscription_id, "plan": "business",
                       "licenses": 100_000}]}
    assert w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes",
                          json={"plan": "business", "licenses": 100_000}).status_code == 200
    refused(w.billing.post(order_path(w), json=body, headers={"Idempotency-Key": "huge"}),
            422, "amount_too_large")
    after = rows(app)
    assert after["orders"] == before["orders"] and after["idempotency_keys"] == 0


# -- catalog and tenant rules ----------------------------------------------------------------
@pytest.mark.parametrize("cut", ["plan", "price"])
def test_replacing_a_product_without_a_live_subscriptions_plan_is_409(hostile, cut):
    app, admin, w = hostile
    before = rows(app)
    product = json.loads(json.dumps(WEBINAR))
    if cut == "plan":
        product["plans"] = [p for p in product["plans"] if p["code"] != "standard"]
    else:  # the USD monthly price the US account's subscription is billed at
        for p in product["plans"]:
            if p["code"] == "standard":
                p["prices"] = [x for x in p["prices"] if x["currency"] != "USD"]
    body = refused(admin.put("/api/v1/catalog/products/webinar", json=product), 409, "plan_in_use")
    assert body["plans"] == ["standard"]
    assert rows(app) == before


def test_a_plan_only_expired_subscriptions_use_may_go(hostile):
    app, admin, w = hostile
    product = json.loads(json.dumps(WEBINAR))
    product["plans"] = [p for p in product["plans"] if p["code"] != "lite"]
    assert admin.put("/api/v1/catalog/products/webinar", json=product).status_code == 200


@pytest.mark.parametrize("issuers", ["empty", "other"])
def test_dropping_an_issuer_that_contacts_sign_in_through_is_409(hostile, issuers):
    app, admin, w = hostile
    before = rows(app)
    new = [] if issuers == "empty" else [TestIssuer.new().spec()]
    body = refused(admin.patch(f"/api/v1/tenants/{w.tenant_id}", json={"issuers": new}),
                   409, "issuer_in_use")
    assert body["issuers"] == [w.issuer.url]
    assert rows(app) == before
    assert w.billing.get("/api/v1/me").status_code == 200


# -- answers ---------------------------------------------------------------------------------
def test_a_replay_is_byte_identical(hostile):
    app, admin, w = hostile
    first = w.billing.post(order_path(w), json=order_body(w), headers={"Idempotency-Key": "r"})
    again = w.billing.post(order_path(w), json=order_body(w), headers={"Idempotency-Key": "r"})
    assert first.status_code == again.status_code == 201
    assert first.get_data() == again.get_data()


def test_request_ids_are_taken_or_made_and_echoed(hostile):
    app, admin, w = hostile
    assert admin.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    made = admin.get("/api/v1/nope").headers["X-Request-Id"]
    assert len(made) == 32
    odd = admin.get("/healthz", headers={"X-Request-Id": "x" * 500}).headers["X-Request-Id"]
    assert odd != "x" * 500 and len(odd) == 32
    r = raw(admin, "POST", "/api/v1/tenants", "{", **{"X-Request-Id": "broken-1"})
    assert r.status_code == 400 and r.headers["X-Request-Id"] == "broken-1"
