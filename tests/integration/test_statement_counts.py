"""The hot path's SQL budget on PostgreSQL, counted with a `before_cursor_execute` listener:
a quote <= 3 statements, an order placement <= 8 with one commit, its apply job <= 6 in one
transaction (the completion mail's reads included: the mail goes out after the commit, with no
statement of its own); the same for an account with 1 subscription in a database of 1 tenant as
with 31 among many."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date

from sqlalchemy import event

from adapters.jobs import resolve
from tenants.models import Subscription
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token

QUOTE, PLACE, APPLY = 3, 8, 6


class Counter:
    def __init__(self, engine):
        self.me = threading.get_ident()
        self.statements: list[str] = []
        self.commits = 0
        self.committed_at: list[int] = []
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, conn, cursor, statement, *args):
        if threading.get_ident() == self.me:
            self.statements.append(statement)

    def _commit(self, conn):
        if threading.get_ident() == self.me:
            self.commits += 1
            self.committed_at.append(len(self.statements))

    @contextmanager
    def counting(self):
        self.statements.clear()
        self.commits = 0
        self.committed_at = []
        yield self


def _held(app):
    """The queue keeps the jobs (so the test thread runs them, and counts them)."""
    jobs = []
    queue = app.extensions["gateway.queue"]
    queue.enqueue = lambda func, *args, **kw: jobs.append((func, args))
    return jobs


def _add_subscriptions(app, w, n):
    db = app.extensions["gateway.db"].sessionmaker()
    ids = []
    for _ in range(n):
        sub = Subscription(tenant_id=w.tenant_id, account_id=w.account_id, product="webinar",
                           plan="standard", licenses=1, billing_period="monthly",
                           status="active", current_period_start=date(2026, 2, 20),
                           current_period_end=date(2026, 3, 20))
        db.add(sub)
        db.flush()
        ids.append(sub.id)
    db.commit()
    db.close()
    return ids


def _measure(app, w, sub_id, key):
    counter = Counter(app.extensions["gateway.db"].engine)
    jobs = _held(app)
    with counter.counting():
        r = w.billing.post(f"/api/v1/subscriptions/{sub_id}/quotes", json={"licenses": 2})
        assert r.status_code == 200, r.get_json()
        quote = list(counter.statements)
    with counter.counting():
        r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", headers={"Idempotency-Key": key},
                           json={"items": [{"subscription_id": sub_id, "licenses": 2}]})
        assert r.status_code == 201, r.get_json()
        place, commits = list(counter.statements), counter.commits
    assert app.extensions["gateway.queue"].wait_idle(10)  # the relay hands the job over
    assert [f for f, _ in jobs] == ["gateway.orders.jobs.process_order"]
    with counter.counting(), app.app_context():
        resolve(jobs[0][0])(*jobs[0][1])
        # The apply (with what the mail needs) is the job's one transaction; then the job
        # tells the contacts itself.
        applied = counter.committed_at[0]
        apply, notify = counter.statements[:applied], counter.statements[applied:]
    status = w.billing.get(f"/api/v1/orders/{r.get_json()['id']}").get_json()["status"]
    assert status == "completed"
    # Whatever the job leaves for the relay is relayed now: into this measure, not the next one's.
    assert app.extensions["gateway.queue"].wait_idle(10)
    assert [f for f, _ in jobs] == ["gateway.orders.jobs.process_order"]  # no notification job
    return quote, place, commits, apply, notify


def _card_account(postgres_url, tmp_path, slug):
    """An app and a US account with a card on file. Versions are read only along with the hot
    queries here (not on a timer), so that the counts do not depend on how slowly the machine
    runs the test."""
    app = build_app(postgres_url, tmp_path, CACHE_MAX_AGE=3600, FROZEN_TODAY="2026-03-10")
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), slug, country="US", currency="USD")
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2099})
    return app, admin, w


def test_the_hot_path_stays_within_its_statement_budget(postgres_url, tmp_path):
    app, admin, w = _card_account(postgres_url, tmp_path, "budget")
    first, second = _add_subscriptions(app, w, 2)
    _measure(app, w, first, "warm")  # fills the per-process caches
    small = _measure(app, w, second, "small")

    for n in range(3):  # more tenants, accounts and subscriptions
        make_world(admin, TestIssuer.new(), f"more-{n}", country="US", currency="USD")
    *_, last = _add_subscriptions(app, w, 30)
    _measure(app, w, w.subscription_id, "warm-again")  # the admin changes emptied the caches
    large = _measure(app, w, last, "large")

    for quote, place, commits, apply, notify in (small, large):
        assert len(quote) <= QUOTE, quote
        assert len(place) <= PLACE, place
        assert commits == 1
        assert len(apply) <= APPLY, apply
        assert notify == [], notify
    assert [len(small[i]) for i in (0, 1, 3, 4)] == [len(large[i]) for i in (0, 1, 3, 4)]
    app.extensions["gateway.db"].dispose()


def test_a_placement_reads_an_uncached_tenant_policy_along_with_its_facts(postgres_url, tmp_path):
    from gateway.services import policy

    app, _admin, w = _card_account(postgres_url, tmp_path, "policy")
    cache = app.extensions["gateway.cache"]
    cache.invalidate()
    counter = Counter(app.extensions["gateway.db"].engine)
    alone = str(policy._POLICY.compile(app.extensions["gateway.db"].engine))
    _held(app)
    with counter.counting():
        r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders", headers={"Idempotency-Key": "p"},
                           json={"items": [{"subscription_id": w.subscription_id, "licenses": 2}]})
        assert r.status_code == 201, r.get_json()
    assert alone not in counter.statements
    assert any("policy_require_vat_number" in s for s in counter.statements)
    assert cache.has("tenant", w.tenant_id)
    app.extensions["gateway.db"].dispose()
