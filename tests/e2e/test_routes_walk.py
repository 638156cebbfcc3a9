"""A scripted walk through every route, on the embedded default and on PostgreSQL + Redis with a
real worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import Http, TestIssuer, build_app, make_world, service_token

ROOT = Path(__file__).resolve().parents[2]


def _advisor(admin, staff: TestIssuer, subject: str) -> tuple[str, object]:
    assert admin.post("/api/v1/staff-issuers", json=staff.spec()).status_code == 201
    r = admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": subject,
                                             "name": "Ada Advisor", "email": "ada@vendor.example"})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"], admin.as_(staff.token(subject))


def _card(world):
    r = world.billing.put(f"/api/v1/accounts/{world.account_id}/payment-method", json={
        "token": "pm_tok_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    assert r.status_code == 200, r.get_json()


def _order(http, account_id, item, key):
    r = http.post(f"/api/v1/accounts/{account_id}/orders", json={"items": [item]},
                  headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


@pytest.fixture(params=["embedded", "postgres+redis"])
def stack(request, tmp_path):
    """The embedded default, or PostgreSQL + Redis with a real `flask worker` process."""
    if request.param == "embedded":
        app = build_app(f"sqlite:///{tmp_path / 'gateway.db'}", tmp_path)
        yield app, lambda: app.extensions["gateway.queue"].wait_idle()
        app.extensions["gateway.db"].dispose()
        return
    postgres_url = request.getfixturevalue("postgres_url")
    redis_url = request.getfixturevalue("redis_server_url")
    queue = f"walk-{uuid.uuid4().hex[:8]}"
    app = build_app(postgres_url, tmp_path, REDIS_URL=redis_url, QUEUE_NAME=queue, JOB_BACKOFF=[1])
    env = dict(os.environ, GATEWAY_DATABASE_URL=postgres_url, GATEWAY_REDIS_URL=redis_url,
               GATEWAY_QUEUE_NAME=queue, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"),
               GATEWAY_TICK_SECONDS="0.5")
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        yield app, lambda: None
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=20)
        app.extensions["gateway.db"].dispose()


def eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_walk_every_route(stack):
    app, settle = stack
    admin = Http(app.test_client(), service_token(app))
    staff = TestIssuer.new("staff")
    advisor_id, advisor = _advisor(admin, staff, "ada")

    def status(http, order_id):
        settle()
        return http.get(f"/api/v1/orders/{order_id}").get_json()["status"]

    # self-serve upgrade → billing center → completed
    solo = make_world(admin, TestIssuer.new(), "solo", country="US", currency="USD", start="2026-01-01")
    _card(solo)
    up = _order(solo.billing, solo.account_id, {"subscription_id": solo.subscription_id,
                                                "plan": "business"}, "up")
    assert up["route"]["destination"] == "billing_center"
    assert eventually(lambda: status(solo.billing, up["id"]) == "completed")

    # self-serve downgrade → advisors' pool → approved → completed
    down = _order(solo.billing, solo.account_id, {"subscription_id": solo.subscription_id,
                                                  "plan": "lite"}, "down")
    assert (down["status"], down["route"]["destination"]) == ("awaiting_advisor", "advisor_queue")
    cases = advisor.get("/api/v1/advisor/cases?status=open").get_json()
    case = next(c for c in cases if c["order_id"] == down["id"])
    assert case["pool"] == "corporate-account-services" and case["assigned_advisor_id"] is None

    def notified():
        settle()
        mail = [p.read_text() for p in Path(app.config["MAIL_DIR"]).glob("*.eml")]
        return any("To: ada@vendor.example" in m and case["id"] in m for m in mail)

    assert eventually(notified)
    assert advisor.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 200
    r = advisor.post(f"/api/v1/advisor/cases/{case['id']}/resolve", json={"decision": "approve"})
    assert r.status_code == 200 and r.get_json()["status"] == "resolved"
    done = solo.billing.get(f"/api/v1/orders/{down['id']}").get_json()
    assert done["status"] == "completed"
    assert solo.billing.get(f"/api/v1/subscriptions/{solo.subscription_id}").get_json()["plan"] == "lite"

    # enterprise license addition → portal quote → accepted → completed
    corp = make_world(admin, TestIssuer.new(), "corp", country="FR", channel="corporate",
                      terms="invoice", vat_number="FR40303265045", plan="business", start="2026-01-01",
                      advisor_id=advisor_id)
    assert admin.post(f"/api/v1/tenants/{corp.tenant_id}/accounts", json={}).status_code == 422
    more = _order(corp.billing, corp.account_id, {"subscription_id": corp.subscription_id,
                                                  "licenses": 9}, "more")
    assert (more["status"], more["route"]["destination"]) == ("awaiting_acceptance", "corporate_portal")
    quotes = corp.billing.get(f"/api/v1/accounts/{corp.account_id}/portal-quotes").get_json()
    assert [q["order_id"] for q in quotes] == [more["id"]]
    r = corp.billing.post(f"/api/v1/portal-quotes/{quotes[0]['id']}/accept")
    assert r.status_code == 200 and r.get_json()["status"] == "accepted"
    accepted = corp.billing.get(f"/api/v1/orders/{more['id']}").get_json()
    assert accepted["status"] == "completed"
    assert accepted["license_assignment"][0]["unassigned"] == 9

    # enterprise period change → advisor → rejected with a note the contact sees
    switch = _order(corp.billing, corp.account_id, {"subscription_id": corp.subscription_id,
                                                    "billing_period": "annual"}, "switch")
    assert switch["route"]["destination"] == "advisor_queue"
    case = next(c for c in advisor.get("/api/v1/advisor/cases").get_json()
                if c["order_id"] == switch["id"])
    assert case["assigned_advisor_id"] == advisor_id  # the account's dedicated advisor
    r = advisor.post(f"/api/v1/advisor/cases/{case['id']}/resolve",
                     json={"decision": "reject", "note": "Let us talk at renewal."})
    assert r.status_code == 200
    rejected = corp.billing.get(f"/api/v1/orders/{switch['id']}").get_json()
    assert (rejected["status"], rejected["note"]) == ("rejected", "Let us talk at renewal.")

    types = [e["type"] for e in admin.get("/api/v1/events?limit=1000").get_json()]
    for t in ("order.created", "order.completed", "order.rejected", "subscription.updated",
              "advisor_case.opened", "advisor_case.resolved"):
        assert t in types


def test_second_advisor_cannot_take_a_claimed_case(app, admin_http):
    staff = TestIssuer.new("staff2")
    _, ada = _advisor(admin_http, staff, "ada")
    r = admin_http.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "bob",
                                                  "name": "Bob", "email": "bob@vendor.example"})
    bob = admin_http.as_(staff.token("bob"))
    assert r.status_code == 201
    w = make_world(admin_http, TestIssuer.new(), "pair", country="US", currency="USD", start="2026-01-01")
    _card(w)
    order = _order(w.billing, w.account_id, {"subscription_id": w.subscription_id, "plan": "lite"}, "k")
    case = next(c for c in ada.get("/api/v1/advisor/cases").get_json() if c["order_id"] == order["id"])
    assert ada.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 200
    r = bob.post(f"/api/v1/advisor/cases/{case['id']}/claim")
    assert r.status_code == 409 and r.get_json()["error"] == "case_claimed"


def test_an_expired_claim_frees_the_case(sqlite_url, tmp_path):
    app = build_app(sqlite_url, tmp_path, CASE_CLAIM_LEASE_SECONDS=1)
    admin = Http(app.test_client(), service_token(app))
    staff = TestIssuer.new("lease")
    _, ada = _advisor(admin, staff, "ada")
    bob_id = admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "bob", "name": "Bob",
                                                  "email": "bob@vendor.example"}).get_json()["id"]
    bob = admin.as_(staff.token("bob"))
    w = make_world(admin, TestIssuer.new(), "lease", country="US", currency="USD", start="2026-01-01")
    _card(w)
    order = _order(w.billing, w.account_id, {"subscription_id": w.subscription_id, "plan": "lite"}, "k")
    case = next(c for c in ada.get("/api/v1/advisor/cases").get_json() if c["order_id"] == order["id"])
    assert ada.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 200
    assert bob.post(f"/api/v1/advisor/cases/{case['id']}/claim").status_code == 409
    time.sleep(1.2)  # the lease runs out
    taken = bob.post(f"/api/v1/advisor/cases/{case['id']}/claim")
    assert taken.status_code == 200
    assert (taken.get_json()["claimed_by"], taken.get_json()["status"]) == (bob_id, "claimed")
    app.extensions["gateway.db"].dispose()


def _ledger(app):
    from sqlalchemy import select

    from adapters.models import LedgerEntry

    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        rows = {r.order_id: r.system for r in db.scalars(select(LedgerEntry))}
        db.close()
    return rows


def test_approval_applies_through_the_adapter_of_the_accounts_segment(app, admin_http):
    staff = TestIssuer.new("seg")
    _, ada = _advisor(admin_http, staff, "ada")
    solo = make_world(admin_http, TestIssuer.new(), "segsolo", country="US", currency="USD",
                      start="2026-01-01")
    _card(solo)
    corp = make_world(admin_http, TestIssuer.new(), "segcorp", country="US", currency="USD",
                      channel="corporate", terms="invoice", plan="business", start="2026-01-01")
    down = _order(solo.billing, solo.account_id, {"subscription_id": solo.subscription_id,
                                                  "plan": "lite"}, "d")
    switch = _order(corp.billing, corp.account_id, {"subscription_id": corp.subscription_id,
                                                    "billing_period": "annual"}, "s")
    for order in (down, switch):
        case = next(c for c in ada.get("/api/v1/advisor/cases").get_json() if c["order_id"] == order["id"])
        r = ada.post(f"/api/v1/advisor/cases/{case['id']}/resolve", json={"decision": "approve"})
        assert r.status_code == 200, r.get_json()
    assert _ledger(app) == {down["id"]: "billing_center", switch["id"]: "corporate_portal"}
