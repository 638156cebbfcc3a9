"""The billing center over HTTP on loopback: an outage ends in completion or an advisor case."""

from __future__ import annotations

import pytest

from adapters.billing_center_http import HttpBillingCenter
from adapters.http_client import ServiceClient
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.fake_external import FakeExternal


@pytest.fixture
def external():
    fake = FakeExternal().start()
    yield fake
    fake.stop()


def _world(sqlite_url, tmp_path, fake):
    client = ServiceClient(fake.url, token_endpoint=fake.token_url, client_id="gateway",
                           client_secret="gateway-secret", timeout=2, retries=0)
    app = build_app(sqlite_url, tmp_path, BILLING_CENTER=HttpBillingCenter(client), JOB_RETRIES=3)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "out", country="US", currency="USD", start="2026-01-01")
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    return app, admin, w


def _place(w, key):
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                       json={"items": [{"subscription_id": w.subscription_id, "plan": "business"}]},
                       headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_outage_then_recovery_completes_once(sqlite_url, tmp_path, external):
    app, _, w = _world(sqlite_url, tmp_path, external)
    external.fail_next(2, status=503)
    order_id = _place(w, "o1")
    assert app.extensions["gateway.queue"].wait_idle(30)
    assert w.billing.get(f"/api/v1/orders/{order_id}").get_json()["status"] == "completed"
    assert external.applied_for_order(order_id) == 1


def test_outage_that_outlasts_retries_opens_an_advisor_case(sqlite_url, tmp_path, external):
    app, admin, w = _world(sqlite_url, tmp_path, external)
    external.stop()
    order_id = _place(w, "o2")
    assert app.extensions["gateway.queue"].wait_idle(30)
    order = w.billing.get(f"/api/v1/orders/{order_id}").get_json()
    assert order["status"] == "awaiting_advisor"
    events = admin.get("/api/v1/events?limit=200").get_json()
    opened = [e for e in events if e["type"] == "advisor_case.opened"]
    assert opened and opened[0]["data"]["order_id"] == order_id
    assert opened[0]["data"]["reason"].startswith("adapter_failed")


def test_approving_while_the_billing_center_is_still_down_changes_nothing(sqlite_url, tmp_path, external):
    app, admin, w = _world(sqlite_url, tmp_path, external)
    staff = TestIssuer.new("ops")
    admin.post("/api/v1/staff-issuers", json=staff.spec())
    admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "ada", "name": "Ada",
                                         "email": "ada@vendor.example"})
    ada = admin.as_(staff.token("ada"))
    external.stop()
    order_id = _place(w, "o3")
    assert app.extensions["gateway.queue"].wait_idle(30)
    case = next(c for c in ada.get("/api/v1/advisor/cases").get_json() if c["order_id"] == order_id)
    r = ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve", json={"decision": "approve"})
    assert r.status_code == 503 and r.get_json()["error"] == "adapter_unavailable"
    assert w.billing.get(f"/api/v1/orders/{order_id}").get_json()["status"] == "awaiting_advisor"
    external.start()
    r = ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve", json={"decision": "approve"})
    assert r.status_code == 200, r.get_json()
    assert w.billing.get(f"/api/v1/orders/{order_id}").get_json()["status"] == "completed"
    assert external.applied_for_order(order_id) == 1
