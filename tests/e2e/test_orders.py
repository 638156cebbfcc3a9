"""Worked examples of design.md over HTTP, with a frozen clock, and the order flow."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import Http, TestIssuer, build_app, make_world, service_token


@pytest.fixture
def frozen(sqlite_url, tmp_path):
    def make(today):
        app = build_app(sqlite_url, tmp_path, FROZEN_TODAY=today)
        return app, Http(app.test_client(), service_token(app))
    return make


def test_example_1_upgrade_with_reverse_charge(frozen):
    app, admin = frozen("2026-03-10")
    w = make_world(admin, TestIssuer.new(), "acme", country="DE", vat_number="DE136695976",
                   balance="10.00", start="2026-02-20")
    r = w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes",
                       json={"plan": "business", "licenses": 8})
    assert r.status_code == 200, r.get_json()
    q = r.get_json()
    assert q["changes"] == ["plan_upgrade", "licenses_added"]
    assert [(line["type"], line["amount"]) for line in q["lines"]] == [
        ("credit_unused", "-51.79"), ("charge", "392.00")]
    assert (q["net"], q["balance_applied"], q["credit_added"]) == ("340.21", "10.00", "0.00")
    assert q["tax"]["treatment"] == "reverse_charge" and q["tax"]["amount"] == "0.00"
    assert q["total_due"] == "330.21"
    assert (q["proposed"]["period_start"], q["proposed"]["period_end"]) == ("2026-03-10", "2026-04-10")
    assert q["rate_increase"] is True
    assert {"type": "payment_method", "status": "outstanding"} in q["requirements"]
    assert q["next_action"] == "provide_requirements"
    assert q["route"]["destination"] == "billing_center"

    order = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                           json={"items": [{"subscription_id": w.subscription_id, "plan": "business",
                                            "licenses": 8}]}, headers={"Idempotency-Key": "k1"})
    assert order.status_code == 409
    assert order.get_json()["error"] == "requirements_outstanding"

    assert w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_tok_123", "brand": "visa", "last4": "4242", "exp_month": 12,
        "exp_year": 2030}).status_code == 200
    body = {"items": [{"subscription_id": w.subscription_id, "plan": "business", "licenses": 8}]}
    order = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=body,
                           headers={"Idempotency-Key": "k1"})
    assert order.status_code == 201, order.get_json()
    placed = order.get_json()
    assert placed["total_due"] == "330.21"
    app.extensions["gateway.queue"].wait_idle()
    done = w.billing.get(f"/api/v1/orders/{placed['id']}").get_json()
    assert done["status"] == "completed"
    assign_url = f"/api/v1/subscriptions/{w.subscription_id}/licenses"
    assert done["license_assignment"] == [
        {"subscription_id": w.subscription_id, "unassigned": 8, "assign_url": assign_url}]
    sub = w.billing.get(f"/api/v1/subscriptions/{w.subscription_id}").get_json()
    assert (sub["plan"], sub["licenses"], sub["current_period_start"], sub["current_period_end"]) == (
        "business", 8, "2026-03-10", "2026-04-10")
    account = w.billing.get(f"/api/v1/accounts/{w.account_id}").get_json()
    assert account["credit_balance"] == "0.00"
    replay = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=body,
                            headers={"Idempotency-Key": "k1"})
    assert replay.status_code == 201 and replay.get_json()["id"] == placed["id"]
    other = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                           json={"items": [{"subscription_id": w.subscription_id, "licenses": 9}]},
                           headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422 and other.get_json()["error"] == "idempotency_key_reused"
    types = [e["type"] for e in admin.get("/api/v1/events").get_json()]
    assert types == ["order.created", "subscription.updated", "order.completed"]


def test_example_2_license_reduction_irish_account(frozen):
    _, admin = frozen("2026-01-31")
    w = make_world(admin, TestIssuer.new(), "eire", country="IE", plan="lite", licenses=20,
                   period="annual", start="2025-06-15")
    q = w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes",
                       json={"licenses": 12}).get_json()
    assert [line["amount"] for line in q["lines"]] == ["-1109.59", "1800.00"]
    assert (q["net"], q["tax"]["rate"], q["tax"]["amount"], q["total_due"]) == (
        "690.41", "0.23", "158.79", "849.20")
    assert q["tax"]["treatment"] == "standard"
    assert (q["proposed"]["period_start"], q["proposed"]["period_end"]) == ("2026-01-31", "2027-01-31")
    # amended §3.3: no rate increase, but 849.20 to charge: a card account needs a card
    assert q["rate_increase"] is False
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"}]
    assert q["changes"] == ["licenses_removed"]


def test_example_3_period_switch_us_account(frozen):
    _, admin = frozen("2026-01-31")
    w = make_world(admin, TestIssuer.new(), "usco", country="US", currency="USD", plan="business",
                   licenses=3, period="annual", start="2025-11-30", balance="5.00")
    q = w.billing.post(f"/api/v1/subscriptions/{w.subscription_id}/quotes",
                       json={"billing_period": "monthly"}).get_json()
    assert [line["amount"] for line in q["lines"]] == ["-1220.30", "147.00"]
    assert (q["net"], q["credit_added"], q["balance_applied"], q["total_due"]) == (
        "-1073.30", "1073.30", "0.00", "0.00")
    assert q["tax"]["treatment"] == "not_applicable"
    assert q["proposed"]["period_end"] == "2026-02-28"
    assert q["current"]["recurring_amount"] == "122.50" and q["proposed"]["recurring_amount"] == "147.00"
    assert q["requirements"] == [{"type": "payment_method", "status": "outstanding"}]


def test_every_order_decision_is_audited(frozen):
    app, admin = frozen("2026-03-10")
    w = make_world(admin, TestIssuer.new(), "audit", country="US", currency="USD", start="2026-02-20")
    body = {"items": [{"subscription_id": w.subscription_id, "plan": "business"}]}
    refused = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=body,
                             headers={"Idempotency-Key": "a1"})
    assert refused.get_json()["error"] == "requirements_outstanding"
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    placed = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=body,
                            headers={"Idempotency-Key": "a1"})
    assert placed.status_code == 201  # a refused key is released for the retry
    assert app.extensions["gateway.queue"].wait_idle()
    from sqlalchemy import select

    from gateway.orders.models import AuditRecord

    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        rows = db.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        db.close()
    assert [(r.action, r.actor.split(":")[0], r.account_id) for r in rows] == [
        ("order.refused", "contact", w.account_id), ("order.placed", "contact", w.account_id),
        ("order.completed", "gateway", w.account_id)]  # each transition (gateway/orders/lifecycle.py)
    assert rows[0].data["error"] == "requirements_outstanding"
    placed_data = rows[1].data
    assert placed_data["route"] == "billing_center"
    assert placed_data["total_due"] == placed.get_json()["total_due"]
    assert placed_data["items"][0]["changes"] == ["plan_upgrade"]


def _order_body(w):
    return {"items": [{"subscription_id": w.subscription_id, "plan": "business"}]}


def _card(w):
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})


def test_a_claim_whose_request_died_is_released_after_its_lease(sqlite_url, tmp_path):
    from sqlalchemy import update

    from gateway.orders.models import IdempotencyRecord
    from tenants.db import utcnow

    app = build_app(sqlite_url, tmp_path, IDEMPOTENCY_LEASE_SECONDS=30)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "lease", country="US", currency="USD")
    _card(w)
    with app.app_context():  # a request that claimed "k" and died before answering
        db = app.extensions["gateway.db"].sessionmaker()
        db.add(IdempotencyRecord(scope=f"contact:billing@lease@{w.issuer.url}|{w.account_id}",
                                 key="k", request_hash=hashlib.sha256(json.dumps(
                                     _order_body(w), sort_keys=True).encode()).hexdigest()))
        db.commit()
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=_order_body(w),
                       headers={"Idempotency-Key": "k"})
    assert r.status_code == 409 and r.get_json()["error"] == "idempotency_key_in_use"
    with app.app_context():
        from datetime import timedelta

        db.execute(update(IdempotencyRecord).values(created_at=utcnow() - timedelta(seconds=31)))
        db.commit()
        db.close()
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=_order_body(w),
                       headers={"Idempotency-Key": "k"})
    assert r.status_code == 201, r.get_json()


def test_an_order_stuck_in_processing_is_sent_again(sqlite_url, tmp_path):
    from sqlalchemy import update

    from adapters.models import OutboxMessage
    from gateway.orders.jobs import requeue_stuck_orders, tick
    from gateway.orders.models import Order

    app = build_app(sqlite_url, tmp_path, STUCK_ORDER_SECONDS=60, TICK_SECONDS=3600)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "stuck", country="US", currency="USD")
    _card(w)
    with app.app_context():  # the process died after the relay sent the job, before it ran
        app.extensions["gateway.queue"].enqueue = lambda *a, **k: None
        r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=_order_body(w),
                           headers={"Idempotency-Key": "s"})
        order_id = r.get_json()["id"]
        assert requeue_stuck_orders() == 0  # not stuck yet
        db = app.extensions["gateway.db"].sessionmaker()
        from datetime import timedelta

        from tenants.db import utcnow

        db.execute(update(Order).values(updated_at=utcnow() - timedelta(seconds=61)))
        db.commit()
        del app.extensions["gateway.queue"].enqueue  # the queue works again
        tick()
        app.extensions["gateway.queue"].wait_idle()
        assert db.get(Order, order_id, populate_existing=True).status == "completed"
        assert db.query(OutboxMessage).filter(OutboxMessage.dispatched_at.is_(None)).count() == 0
        db.close()


def test_an_overlong_idempotency_key_is_refused(frozen):
    _, admin = frozen("2026-03-10")
    w = make_world(admin, TestIssuer.new(), "longkey", country="US", currency="USD")
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=_order_body(w),
                       headers={"Idempotency-Key": "k" * 201})
    assert r.status_code == 400 and r.get_json()["error"] == "idempotency_key_invalid"


def test_two_new_subscriptions_of_one_product_in_one_order_are_refused(frozen):
    _, admin = frozen("2026-03-10")
    w = make_world(admin, TestIssuer.new(), "twice", country="US", currency="USD")
    item = {"product": "webinar", "plan": "lite", "licenses": 1, "billing_period": "monthly"}
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json={"items": [item, item]},
                       headers={"Idempotency-Key": "t"})
    assert r.status_code == 422 and r.get_json()["error"] == "duplicate_subscription"
