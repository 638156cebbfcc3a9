"""Orders under real concurrency: a threaded HTTP server on loopback, 20 client threads at once.

(a) one Idempotency-Key sent by 20 callers at once places one order, applied once;
(b) 20 different keys for one subscription: one order wins, the others are refused with a
    stable 409, and the subscription is never changed twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal

import requests
from sqlalchemy import func, select
from werkzeug.serving import make_server

from adapters.models import LedgerEntry
from gateway.orders.models import Order
from tenants.models import Account, Subscription
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token

THREADS = 20
TODAY = "2026-01-31"
# design.md example 3: business x3 annual -> monthly on 2026-01-31; a US account, no VAT.
CREDIT_ADDED = Decimal("1073.30")
BALANCE = Decimal("5.00")


@contextmanager
def serving(app):
    """The app behind werkzeug's threaded server on an ephemeral loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def burst(count: int, call) -> list[tuple[int, dict]]:
    """`count` threads, each with its own connection, released together by a barrier."""
    barrier = threading.Barrier(count)

    def one(i):
        with requests.Session() as s:
            barrier.wait(10)
            r = call(s, i)
            return r.status_code, r.json()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


_GATES: dict[str, threading.Event] = {}


def wait_at_gate(name: str) -> None:
    """A queue job that holds the worker until the test opens the gate: orders placed meanwhile
    stay open (their jobs wait behind it) without any database lock being held."""
    assert _GATES[name].wait(30)


@contextmanager
def queue_held(app):
    name = f"gate-{id(app)}"
    _GATES[name] = threading.Event()
    app.extensions["gateway.queue"].enqueue(f"{__name__}.wait_at_gate", name)
    try:
        yield
    finally:
        _GATES.pop(name).set()


def _world(db_url, tmp_path):
    app = build_app(db_url, tmp_path, FROZEN_TODAY=TODAY)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "race", country="US", currency="USD", plan="business",
                   licenses=3, period="annual", start="2025-11-30", balance=str(BALANCE))
    r = w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_race", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2099})
    assert r.status_code == 200, r.get_json()
    return app, w


def _state(app, w):
    db = app.extensions["gateway.db"].sessionmaker()
    try:
        sub = db.get(Subscription, w.subscription_id)
        return {
            "orders": db.scalar(select(func.count()).select_from(Order)
                                .where(Order.account_id == w.account_id)),
            "ledger": db.scalar(select(func.count()).select_from(LedgerEntry)),
            "version": sub.version, "billing_period": sub.billing_period,
            "balance": db.get(Account, w.account_id).credit_balance,
            "statuses": sorted(db.scalars(select(Order.status)
                                          .where(Order.account_id == w.account_id))),
        }
    finally:
        db.close()


def _post_order(base, w, body, key):
    url = f"{base}/api/v1/accounts/{w.account_id}/orders"

    def call(s, i):
        return s.post(url, json=body, timeout=30, headers={
            "Authorization": f"Bearer {w.billing.token}", "Idempotency-Key": key(i)})
    return call


BODY = {"items": [{"subscription_id": None, "billing_period": "monthly"}]}


def _body(w):
    return {"items": [dict(BODY["items"][0], subscription_id=w.subscription_id)]}


def test_one_key_from_twenty_callers_places_and_applies_one_order(postgres_url, tmp_path):
    app, w = _world(postgres_url, tmp_path)
    before = _state(app, w)
    try:
        with serving(app) as base:
            results = burst(THREADS, _post_order(base, w, _body(w), lambda i: "same-key"))
        assert app.extensions["gateway.queue"].wait_idle(20)
        placed = {body["id"] for status, body in results if status == 201}
        refused = Counter(body["error"] for status, body in results if status != 201)
        assert len(placed) == 1, results
        assert set(refused) <= {"idempotency_key_in_use"}, results
        assert all(status in (201, 409) for status, _ in results), results
        after = _state(app, w)
        assert after["orders"] == 1 and after["statuses"] == ["completed"]
        assert after["ledger"] == before["ledger"] + 1
        assert after["version"] == before["version"] + 1
        assert after["billing_period"] == "monthly"
        assert after["balance"] == BALANCE + CREDIT_ADDED  # moved once, not twice
        # once the first answer is stored, the key replays it
        replay = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", json=_body(w),
                                headers={"Idempotency-Key": "same-key"})
        assert replay.status_code == 201 and replay.get_json()["id"] in placed
    finally:
        app.extensions["gateway.db"].dispose()


def test_twenty_keys_for_one_subscription_apply_one_change(db_url, tmp_path):
    app, w = _world(db_url, tmp_path)
    before = _state(app, w)
    try:
        with serving(app) as base, queue_held(app):
            results = burst(THREADS, _post_order(base, w, _body(w), lambda i: f"key-{i}"))
        outcomes = Counter((status, body.get("error")) for status, body in results)
        assert outcomes == {(201, None): 1, (409, "subscription_changed"): THREADS - 1}, results
        assert app.extensions["gateway.queue"].wait_idle(20)
        after = _state(app, w)
        assert after["orders"] == 1 and after["statuses"] == ["completed"]  # refusals place nothing
        assert after["ledger"] == before["ledger"] + 1
        assert after["version"] == before["version"] + 1
        assert after["balance"] == BALANCE + CREDIT_ADDED
    finally:
        app.extensions["gateway.db"].dispose()


def test_changes_racing_a_running_queue_never_apply_twice(db_url, tmp_path):
    """The queue applies while requests keep arriving: whatever wins, each placed order is
    applied exactly once, on the version it was priced against, and the balance agrees."""
    app, w = _world(db_url, tmp_path)
    before = _state(app, w)
    url = f"{{base}}/api/v1/accounts/{w.account_id}/orders"
    try:
        with serving(app) as base:
            def call(s, i):
                # distinct changes, so a later order on the new version is a real change
                body = {"items": [{"subscription_id": w.subscription_id, "licenses": 4 + i}]}
                return s.post(url.format(base=base), json=body, timeout=30, headers={
                    "Authorization": f"Bearer {w.billing.token}", "Idempotency-Key": f"live-{i}"})
            results = burst(THREADS, call)
        assert app.extensions["gateway.queue"].wait_idle(20)
        placed = [body for status, body in results if status == 201]
        refused = Counter(body["error"] for status, body in results if status != 201)
        assert placed and set(refused) <= {"subscription_changed", "no_change"}, results
        assert all(status in (201, 409, 422) for status, _ in results), results
        after = _state(app, w)
        assert after["orders"] == len(placed)
        assert after["statuses"] == ["completed"] * len(placed)
        assert after["ledger"] == before["ledger"] + len(placed)
        assert after["version"] == before["version"] + len(placed)
        moved = sum(Decimal(o["credit_added"]) - Decimal(o["balance_applied"]) for o in placed)
        assert after["balance"] == BALANCE + moved
    finally:
        app.extensions["gateway.db"].dispose()


def test_open_orders_on_other_subscriptions_never_spend_the_balance_twice(db_url, tmp_path):
    """20 subscriptions of one account upgraded at once: the account's 10.00 credit balance is
    applied to the orders at most once in total, and the balance never goes negative."""
    app, w = _world(db_url, tmp_path)
    admin = Http(app.test_client(), service_token(app))
    db = app.extensions["gateway.db"].sessionmaker()
    db.get(Account, w.account_id).credit_balance = Decimal("10.00")
    db.commit()
    db.close()
    subs = [admin.post(f"/api/v1/accounts/{w.account_id}/subscriptions", json={
        "product": "webinar", "plan": "standard", "licenses": 1, "billing_period": "monthly",
        "status": "active", "current_period_start": "2026-01-20"}).get_json()["id"]
        for _ in range(THREADS)]
    url = f"{{base}}/api/v1/accounts/{w.account_id}/orders"
    try:
        with serving(app) as base:
            def call(s, i):
                body = {"items": [{"subscription_id": subs[i], "plan": "business"}]}
                return s.post(url.format(base=base), json=body, timeout=30, headers={
                    "Authorization": f"Bearer {w.billing.token}", "Idempotency-Key": f"bal-{i}"})
            results = burst(THREADS, call)
        assert app.extensions["gateway.queue"].wait_idle(20)
        assert [status for status, _ in results] == [201] * THREADS, results
        applied = sum(Decimal(body["balance_applied"]) for _, body in results)
        assert applied == Decimal("10.00"), sorted(body["balance_applied"] for _, body in results)
        after = _state(app, w)
        assert after["statuses"] == ["completed"] * THREADS
        assert after["balance"] == Decimal("0.00")
    finally:
        app.extensions["gateway.db"].dispose()


ROUNDS = 20


def test_a_withdrawal_racing_an_approval_has_one_winner(postgres_url, tmp_path):
    """20 rounds: the billing contact withdraws while the advisor approves. Exactly one wins,
    the other answers 409, and nothing is half-applied (a withdrawn order changed nothing; an
    approved one is completed with its case resolved)."""
    from adapters.models import AdvisorCase

    app = build_app(postgres_url, tmp_path, FROZEN_TODAY=TODAY)
    admin = Http(app.test_client(), service_token(app))
    staff = TestIssuer.new("race-staff")
    assert admin.post("/api/v1/staff-issuers", json=staff.spec()).status_code == 201
    adv = admin.post("/api/v1/advisors", json={"issuer": staff.url, "subject": "ada", "name": "Ada",
                                               "email": "ada@vendor.example"}).get_json()["id"]
    ada_token = staff.token("ada")
    w = make_world(admin, TestIssuer.new(), "wrace", country="US", currency="USD", plan="business",
                   licenses=3, period="annual", start="2025-11-30", channel="corporate",
                   terms="invoice", advisor_id=adv)
    outcomes = Counter()
    try:
        with serving(app) as base:
            for n in range(ROUNDS):
                # a period change (an advisor's case) on the subscription's current version
                current = admin.get(f"/api/v1/subscriptions/{w.subscription_id}").get_json()
                flipped = "monthly" if current["billing_period"] == "annual" else "annual"
                r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                                   json={"items": [{"subscription_id": w.subscription_id,
                                                    "billing_period": flipped}]},
                                   headers={"Idempotency-Key": f"round-{n}"})
                assert r.status_code == 201 and r.get_json()["status"] == "awaiting_advisor", r.get_json()
                order_id = r.get_json()["id"]
                case_id = next(c["id"] for c in admin.as_(ada_token).get("/api/v1/advisor/cases").get_json()
                               if c["order_id"] == order_id)
                before = _state(app, w)

                def call(s, i, order_id=order_id, case_id=case_id):
                    if i == 0:
                        return s.post(f"{base}/api/v1/orders/{order_id}/withdraw", timeout=30,
                                      headers={"Authorization": f"Bearer {w.billing.token}"})
                    return s.post(f"{base}/api/v1/advisor/cases/{case_id}/resolve", timeout=30,
                                  json={"decision": "approve"},
                                  headers={"Authorization": f"Bearer {ada_token}"})
                (w_status, w_body), (a_status, a_body) = burst(2, call)
                assert sorted([w_status, a_status]) == [200, 409], (w_body, a_body)
                after = _state(app, w)
                db = app.extensions["gateway.db"].sessionmaker()
                order = db.get(Order, order_id)
                case = db.get(AdvisorCase, case_id)
                if w_status == 200:
                    outcomes["withdrawn"] += 1
                    assert a_body["error"] == "case_withdrawn"
                    assert (order.status, case.status, case.decision) == ("withdrawn", "withdrawn", None)
                    assert (after["version"], after["ledger"], after["balance"]) == (
                        before["version"], before["ledger"], before["balance"])
                else:
                    outcomes["approved"] += 1
                    assert w_body["error"] == "order_not_withdrawable"
                    assert (order.status, case.status, case.decision) == ("completed", "resolved", "approve")
                    assert (after["version"], after["ledger"]) == (before["version"] + 1,
                                                                   before["ledger"] + 1)
                    assert all(i.status == "completed" for i in order.items)
                db.close()
        print("withdraw vs approve outcomes:", dict(outcomes))
        assert sum(outcomes.values()) == ROUNDS
    finally:
        app.extensions["gateway.queue"].wait_idle(20)
        app.extensions["gateway.db"].dispose()
