"""Enterprise quotes in an external corporate portal over HTTP (loopback), read back by polling."""

from __future__ import annotations

import pytest

from adapters.corporate_portal_http import HttpCorporatePortal
from adapters.http_client import ServiceClient
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.fake_external import FakeExternal


@pytest.fixture
def portal():
    fake = FakeExternal().start()
    yield fake
    fake.stop()


@pytest.fixture
def corp(sqlite_url, tmp_path, portal):
    client = ServiceClient(portal.url, token_endpoint=portal.token_url, client_id="gateway",
                           client_secret="gateway-secret", timeout=2, retries=0)
    # the test reads outcomes itself: no background pass in between
    app = build_app(sqlite_url, tmp_path, CORPORATE_PORTAL=HttpCorporatePortal(client), TICK_SECONDS=3600)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "corp", country="FR", channel="corporate",
                   terms="invoice", vat_number="FR40303265045", plan="business", start="2026-01-01")
    return app, w


def _order(w, key):
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                       json={"items": [{"subscription_id": w.subscription_id, "licenses": 12}]},
                       headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "awaiting_acceptance"
    return r.get_json()["id"]


def _poll(app):
    from gateway.orders.jobs import poll_portal_quotes

    with app.app_context():
        return poll_portal_quotes()


@pytest.mark.parametrize(("decision", "status"), [("accepted", "completed"), ("rejected", "rejected")])
def test_portal_decision_moves_the_order_on(corp, portal, decision, status):
    app, w = corp
    order_id = _order(w, "q1")
    assert app.extensions["gateway.queue"].wait_idle(10)
    sent = [r for r in portal.requests_to("/v1/quotes") if r.method == "POST"]
    assert len(sent) == 1 and sent[0].headers["idempotency-key"] == f"quote-{order_id}"
    quote_id = "q_1"
    assert _poll(app) == 0  # still open: nothing moves
    portal.set_quote_status(quote_id, decision, note="Budget frozen" if decision == "rejected" else None)
    assert _poll(app) == 1
    order = w.billing.get(f"/api/v1/orders/{order_id}").get_json()
    assert order["status"] == status
    if decision == "rejected":
        assert order["note"] == "Budget frozen"
    else:
        assert w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").get_json()["licenses"] == 12
    assert _poll(app) == 0  # decided quotes are not read again


def test_an_approved_enterprise_change_becomes_a_purchase_order_once(corp, portal):
    app, w = corp
    admin = Http(app.test_client(), service_token(app))
    staff = TestIssuer.new("po")
    admin.post("/api/v1/staff-issuers", json=staff.spec())
    admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "ada", "name": "Ada",
                                         "email": "ada@vendor.example"})
    ada = admin.as_(staff.token("ada"))
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                       json={"items": [{"subscription_id": w.subscription_id, "billing_period": "annual"}]},
                       headers={"Idempotency-Key": "po"})
    order_id = r.get_json()["id"]
    assert r.get_json()["route"]["destination"] == "advisor_queue"
    case = next(c for c in ada.get("/api/v1/advisor/cases").get_json() if c["order_id"] == order_id)
    assert ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve",
                    json={"decision": "approve"}).status_code == 200
    assert w.billing.get(f"/api/v1/orders/{order_id}").get_json()["status"] == "completed"
    assert portal.applied_for_order(order_id, path="/v1/purchase-orders") == 1


def test_a_po_number_given_on_acceptance_goes_to_the_http_portal(corp, portal):
    app, w = corp
    order_id = _order(w, "po-http")
    assert app.extensions["gateway.queue"].wait_idle(10)
    quote = w.billing.get(f"/api/v1/accounts/{w.account_id}/portal-quotes").get_json()[0]
    r = w.billing.post(f"/api/v1/portal-quotes/{quote['id']}/accept", json={"po_number": "PO-77"})
    assert r.status_code == 200, r.get_json()
    sent = [x for x in portal.requests_to("/v1/purchase-orders") if x.body["order_id"] == order_id]
    assert len(sent) == 1 and sent[0].body["po_number"] == "PO-77"
    assert w.billing.get(f"/api/v1/orders/{order_id}").get_json()["po_number"] == "PO-77"


def test_a_withdrawn_order_withdraws_its_quote_in_the_http_portal(corp, portal):
    app, w = corp
    order_id = _order(w, "withdraw-http")
    assert app.extensions["gateway.queue"].wait_idle(10)  # the quote is in the portal
    r = w.billing.post(f"/api/v1/orders/{order_id}/withdraw")
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    assert app.extensions["gateway.queue"].wait_idle(10)
    sent = [x for x in portal.requests_to("/v1/quotes/q_1/withdraw") if x.method == "POST"]
    assert len(sent) == 1 and sent[0].headers["idempotency-key"] == f"withdraw-{order_id}"
    assert portal.quote_status_of("q_1") == "withdrawn"
    assert _poll(app) == 0  # a withdrawn quote is not read again
