"""Fault tests on PostgreSQL, real Redis and real `flask --app wsgi worker` processes.

The billing center is the loopback FakeExternal reached over HTTP (OAuth client credentials,
idempotency by key), so "applied exactly once" is counted where it matters: on the far side.

1. The billing center is down for a while, then comes back: every order completes, once.
2. A worker is killed with SIGKILL in the middle of a job whose remote call was applied but not
   yet answered: the job is recovered by a fresh worker and applied exactly once.
3. Redis is stopped while orders are placed: the orders are accepted, the outbox keeps them,
   and the worker's relay delivers them once Redis is back.
4. The worker that runs RQ's scheduler is killed while every job waits for its retry: a worker
   started after it takes the scheduler over within seconds and the retries run on time.
5. The database goes away in the middle of an order (a TCP proxy is cut): the client's retry
   with the same key succeeds within seconds of its return, and places the order once.

Each test prints its figures: `FAULT <name>: placed=N completed=N duplicates=0 lost=0`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.models import AdvisorCase, OutboxMessage
from gateway.orders.models import Order
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.fake_external import FakeExternal

ORDERS = 20
JOB_RETRIES = 5
JOB_BACKOFF = [1, 1, 2, 2, 3]
ROOT = Path(__file__).resolve().parents[2]
DB_ERROR = re.compile(r"\b(psycopg|sqlalchemy(\.orm)?\.exc)\.\w+(Error|Exception)\b")


@pytest.fixture
def fake():
    external = FakeExternal().start()
    yield external
    external.stop()


# -- worker processes ------------------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    """Every live process below `pid`. RQ's work horse calls setpgrp(), so killing the worker's
    process group alone would leave the horse running its job to the end."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    pids = _descendants(process.pid)  # before the parent dies and its children are re-parented
    for send, target in [(os.killpg, process.pid)] + [(os.kill, p) for p in pids]:
        with suppress(ProcessLookupError):
            send(target, signal.SIGKILL)


class WorkerProcess:
    """`flask --app wsgi worker` (non-burst, with the RQ scheduler and the outbox relay)."""

    def __init__(self, env: dict, log_path: Path):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env=env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def sigkill(self) -> None:
        """The worker, its scheduler and its work horse die at once, as in a host crash."""
        _kill_tree(self.process)
        self.process.wait(10)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL for the whole tree if it takes over 10 s."""
        if self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)  # the worker lets its horse finish the job
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.sigkill()


@contextmanager
def worker(env: dict, tmp_path: Path, name: str = "worker"):
    proc = WorkerProcess(env, tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.log")
    try:
        yield proc
    finally:
        proc.stop()


# -- the world ---------------------------------------------------------------------------------
class Scenario:
    def __init__(self, postgres_url: str, redis_url: str, tmp_path: Path, fake: FakeExternal,
                 backoff=JOB_BACKOFF):
        self.queue_name = f"fault-{uuid.uuid4().hex[:10]}"
        self.fake = fake
        self.tmp_path = tmp_path
        adapter = {"BILLING_CENTER_URL": fake.url, "ADAPTER_TOKEN_URL": fake.token_url,
                   "ADAPTER_CLIENT_ID": fake.client_id, "ADAPTER_CLIENT_SECRET": fake.client_secret,
                   "ADAPTER_TIMEOUT": 10.0,
                   # Each job attempt still makes its in-call retries (3 calls), 20 ms apart
                   # instead of 0.2 s and 0.4 s: 20 failing attempts take seconds, not 15 s.
                   "ADAPTER_BACKOFF": 0.02}
        self.app = build_app(postgres_url, tmp_path, REDIS_URL=redis_url, QUEUE_NAME=self.queue_name,
                             JOB_RETRIES=JOB_RETRIES, JOB_BACKOFF=list(backoff), **adapter)
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", GATEWAY_DATABASE_URL=postgres_url,
                        GATEWAY_REDIS_URL=redis_url, GATEWAY_QUEUE_NAME=self.queue_name,
                        GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"),
                        GATEWAY_JOB_RETRIES=str(JOB_RETRIES),
                        **{f"GATEWAY_{k}": str(v) for k, v in adapter.items()})
        admin = Http(self.app.test_client(), service_token(self.app))
        self.world = make_world(admin, TestIssuer.new(), f"flt{uuid.uuid4().hex[:6]}", country="US",
                                currency="USD", start="2026-01-01")
        r = self.world.billing.put(f"/api/v1/accounts/{self.world.account_id}/payment-method", json={
            "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
        assert r.status_code in (200, 201, 204), r.get_json()
        # 4 licenses each keeps the account under the enterprise threshold (100 active licenses),
        # so every upgrade is self-serve and goes to the billing center.
        self.subscriptions = [self.world.subscription_id]
        while len(self.subscriptions) < ORDERS:
            r = admin.post(f"/api/v1/accounts/{self.world.account_id}/subscriptions", json={
                "product": "webinar", "plan": "standard", "licenses": 4, "billing_period": "monthly",
                "status": "active", "current_period_start": "2026-01-01"})
            assert r.status_code == 201, r.get_json()
            self.subscriptions.append(r.get_json()["id"])
        self.order_ids: list[str] = []

    @property
    def queue(self):
        return self.app.extensions["gateway.queue"]

    def place_all(self) -> list[str]:
        for n, subscription_id in enumerate(self.subscriptions):
            r = self.world.billing.post(
                f"/api/v1/accounts/{self.world.account_id}/orders",
                json={"items": [{"subscription_id": subscription_id, "plan": "business"}]},
                headers={"Idempotency-Key": f"{self.queue_name}-{n}"})
            assert r.status_code == 201, r.get_json()
            body = r.get_json()
            assert body["status"] == "processing", body
            self.order_ids.append(body["id"])
        return self.order_ids

    def statuses(self) -> dict[str, str]:
        db = self.app.extensions["gateway.db"].sessionmaker()
        try:
            return dict(db.execute(select(Order.id, Order.status).where(Order.id.in_(self.order_ids))).all())
        finally:
            db.close()

    def cased(self) -> set[str]:
        db = self.app.extensions["gateway.db"].sessionmaker()
        try:
            return set(db.scalars(select(AdvisorCase.order_id)
                                  .where(AdvisorCase.order_id.in_(self.order_ids))).all())
        finally:
            db.close()

    def undispatched(self) -> int:
        db = self.app.extensions["gateway.db"].sessionmaker()
        try:
            return db.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.dispatched_at.is_(None)))
        finally:
            db.close()

    def wait_settled(self, timeout: float, *workers: WorkerProcess) -> dict[str, str]:
        """Until every order is completed or handed to an advisor (or the deadline passes)."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.statuses()
            settled = [s for s in statuses.values() if s != "processing"]
            if len(settled) == len(self.order_ids) or time.monotonic() > deadline:
                return statuses
            for w in workers:
                assert w.process.poll() is None, f"the worker exited early:\n{w.log_tail()}"
            time.sleep(0.2)

    def figures(self, name: str) -> dict[str, int]:
        statuses, cased = self.statuses(), self.cased()
        figures = {
            "placed": len(self.order_ids),
            "completed": sum(1 for s in statuses.values() if s == "completed"),
            "duplicates": sum(max(0, self.fake.applied_for_order(i) - 1) for i in self.order_ids),
            "lost": sum(1 for i in self.order_ids if statuses.get(i) != "completed" and i not in cased),
        }
        print(f"FAULT {name}: " + " ".join(f"{k}={v}" for k, v in figures.items()))
        return figures

    def assert_all_applied_once(self, name: str, *workers: WorkerProcess) -> None:
        figures = self.figures(name)
        logs = "\n".join(w.log_tail() for w in workers)
        assert figures == {"placed": ORDERS, "completed": ORDERS, "duplicates": 0, "lost": 0}, \
            f"{figures}\nstatuses={self.statuses()}\n{logs}"
        applied = {i: self.fake.applied_for_order(i) for i in self.order_ids}
        assert set(applied.values()) == {1}, applied
        assert not self.cased()
        # The only failures allowed are the injected ones: none from the database itself (a work
        # horse sharing its parent's pooled connections fails this way, intermittently).
        db_errors = [line for w in workers for line in w.log_path.read_text(errors="replace").splitlines()
                     if DB_ERROR.search(line)]
        assert not db_errors, "\n".join(db_errors[:20])

    def dispose(self) -> None:
        self.queue.connection.close()
        self.app.extensions["gateway.db"].dispose()


def _wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# -- 1. the billing center is down, then comes back --------------------------------------------
def test_billing_center_down_then_back(postgres_url, redis_server_url, tmp_path, fake):
    from rq.job import Job

    s = Scenario(postgres_url, redis_server_url, tmp_path, fake)
    try:
        fake.stop()  # connections are refused: every call fails as transient
        s.place_all()

        def failed_at_least_once() -> bool:
            jobs = Job.fetch_many([f"order-{i}" for i in s.order_ids], connection=s.queue.connection)
            return all(j is not None and j.retries_left < JOB_RETRIES for j in jobs)

        with worker(s.env, tmp_path) as w:
            started = time.monotonic()
            # The outage lasts at least 3 s and until every order's job has failed at least once,
            # so each order goes through the retry path (none has exhausted its 5 retries yet).
            _wait_for(failed_at_least_once, 45, "every order's job to fail once", interval=0.2)
            time.sleep(max(0.0, 3 - (time.monotonic() - started)))
            assert all(fake.applied_for_order(i) == 0 for i in s.order_ids)
            assert set(s.statuses().values()) == {"processing"}
            fake.start()  # the same port, the same state
            s.wait_settled(60, w)
            s.assert_all_applied_once("billing_center_down", w)
    finally:
        s.dispose()


# -- 2. a worker is SIGKILLed in the middle of a job -------------------------------------------
def test_worker_killed_mid_job_is_recovered_once(postgres_url, redis_server_url, tmp_path, fake):
    from rq.job import Job
    from rq.registry import StartedJobRegistry
    from rq.scheduler import RQScheduler

    s = Scenario(postgres_url, redis_server_url, tmp_path, fake)
    try:
        s.place_all()  # the orders wait for a worker (in the outbox: on PostgreSQL workers relay)
        # The first change is applied by the billing center, but its answer hangs for 5 s:
        # the worker dies after the far side acted and before the gateway recorded it.
        fake.delay_next(1, seconds=5, after_apply=True)

        def applied() -> list[str]:
            return [i for i in s.order_ids if fake.applied_for_order(i)]

        with worker(s.env, tmp_path, "first") as first:
            _wait_for(lambda: applied() or first.process.poll() is not None, 30,
                      "the billing center to apply the first change")
            victims = applied()
            assert victims, f"the worker exited:\n{first.log_tail()}"
            first.sigkill()
        assert len(victims) == 1, victims
        victim = victims[0]
        assert s.statuses()[victim] == "processing"  # the gateway never learnt of the answer

        connection = s.queue.connection
        registry = StartedJobRegistry(s.queue_name, connection=connection)
        # The victim's job: its own, or a batch of orders relayed together.
        holding = [job.id for job in Job.fetch_many(registry.get_job_ids(cleanup=False),
                                                    connection=connection)
                   if job is not None and victim in repr(job.args)]
        assert len(holding) == 1, registry.get_job_ids(cleanup=False)
        # Nobody is left to finish the job: it stays "started" until its heartbeat expires
        # (the heartbeat TTL is the job monitoring interval + 60 s, so at least 60 s). RQ's
        # maintenance pass then calls exactly this cleanup, which hands the abandoned job to
        # its Retry; the test moves the cutoff past the TTL instead of sleeping through it (past
        # the job's timeout too: a batch of ten orders has ten jobs' time, 30 minutes).
        registry.cleanup(timestamp=time.time() + 24 * 3600)
        assert holding[0] not in registry.get_job_ids(cleanup=False)
        # Likewise the dead worker's scheduler lock (TTL: scheduler interval + 60 s) would keep
        # a new worker's scheduler from running the retry until it expires; expire it now.
        connection.delete(RQScheduler.get_locking_key(s.queue_name))

        with worker(s.env, tmp_path, "second") as second:
            s.wait_settled(45, second)
            s.assert_all_applied_once("worker_sigkill", second)
        # The idempotency key was forwarded: the retry was answered, not applied again.
        keys = [r.headers.get("idempotency-key") for r in fake.requests_to("/v1/subscription-changes")
                if r.body and r.body.get("order_id") == victim]
        assert len(keys) >= 2 and set(keys) == {f"order-{victim}"}, keys
    finally:
        s.dispose()


# -- 3. Redis is stopped while orders are placed ---------------------------------------------
def test_orders_placed_while_redis_is_down_are_delivered_later(postgres_url, redis_process, tmp_path,
                                                               fake):
    s = Scenario(postgres_url, redis_process.url, tmp_path, fake)
    try:
        assert s.queue.ping()
        redis_process.stop()
        s.place_all()  # every order is accepted: it is committed with its outbox row
        assert s.undispatched() == ORDERS
        assert set(s.statuses().values()) == {"processing"}

        redis_process.start()  # same port, empty (no persistence): only the outbox remembers
        assert s.queue.ping()
        with worker(s.env, tmp_path) as w:
            s.wait_settled(45, w)
            s.assert_all_applied_once("redis_down", w)
            assert s.undispatched() == 0
    finally:
        s.dispose()


# -- 4. the worker running the scheduler is killed while retries wait ---------------------------
def test_a_dead_schedulers_retries_run_on_time_under_a_new_worker(postgres_url, redis_server_url,
                                                                  tmp_path, fake):
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry
    from rq.scheduler import RQScheduler

    backoff = [12] * 5  # long enough for all 20 first attempts to fail before any retry
    s = Scenario(postgres_url, redis_server_url, tmp_path, fake, backoff=backoff)
    try:
        connection = s.queue.connection
        lock = RQScheduler.get_locking_key(s.queue_name)
        scheduled = ScheduledJobRegistry(s.queue_name, connection=connection)
        started = StartedJobRegistry(s.queue_name, connection=connection)
        fake.stop()  # every first attempt fails: each job waits 12 s for its retry
        s.place_all()

        def all_waiting_for_retry() -> bool:
            jobs = Job.fetch_many([f"order-{i}" for i in s.order_ids], connection=connection)
            return (all(j is not None and j.retries_left < JOB_RETRIES for j in jobs)
                    and scheduled.count == ORDERS and not started.get_job_ids(cleanup=False))

        with worker(s.env, tmp_path, "scheduler") as first:
            _wait_for(lambda: connection.get(lock) is not None, 30, "the scheduler lock")
            _wait_for(all_waiting_for_retry, 45, "every job to wait for its retry", interval=0.1)
            first.sigkill()  # no work in hand: only its scheduler (and its lock) dies
            killed = time.monotonic()
        assert connection.get(lock) is not None  # RQ would keep it for a minute
        fake.start()
        with worker(s.env, tmp_path, "new") as second:
            s.wait_settled(60, second)
            took = time.monotonic() - killed
            s.assert_all_applied_once("scheduler_worker_killed", second)
        print(f"FAULT scheduler_worker_killed: settled {took:.1f}s after the kill "
              f"(retry backoff {backoff[0]} s)")
        # The retries were due 12 s after the failures; a lock held for a minute (and RQ's
        # ten-minute maintenance) would have held them back well past this.
        assert took < backoff[0] + 12, took
    finally:
        s.dispose()


# -- 5. the database goes away mid-order -------------------------------------------------------
def test_a_retry_after_a_database_outage_mid_order_succeeds_once(postgres_url, tmp_path):
    import threading

    from sqlalchemy.engine import make_url

    from gateway.services import pricing
    from tenants.models import Account, Subscription
    from tests.integration.tcp_proxy import TcpProxy

    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = build_app(via_proxy, tmp_path)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), f"pgcut{uuid.uuid4().hex[:6]}", country="US",
                   currency="USD", start="2026-01-01")
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    path = f"/api/v1/accounts/{w.account_id}/orders"
    body = {"items": [{"subscription_id": w.subscription_id, "plan": "business"}]}
    original, restored_at = pricing.price, {}

    def price_then_lose_the_database(*args, **kwargs):
        pricing.price = original  # once
        proxy.cut()  # the order's transaction (which holds the key's claim) is in flight

        def back():
            proxy.restore()
            restored_at["t"] = time.monotonic()

        threading.Timer(1.5, back).start()
        return original(*args, **kwargs)

    pricing.price = price_then_lose_the_database
    try:
        first = w.billing.post(path, json=body, headers={"Idempotency-Key": "outage"})
        assert first.status_code == 503, first.get_json()
        assert first.get_json()["error"] == "database_unavailable"
        answers = []
        while True:  # the client retries with the same key, as told (Retry-After)
            r = w.billing.post(path, json=body, headers={"Idempotency-Key": "outage"})
            answers.append((r.status_code, r.get_json()["error"] if r.status_code != 201 else None))
            if r.status_code == 201 or len(answers) > 200:
                break
            time.sleep(0.1)
        assert r.status_code == 201, answers
        took = time.monotonic() - restored_at["t"]
        print(f"FAULT postgres_cut_mid_order: 201 {took:.2f}s after the database came back; "
              f"answers meanwhile {sorted(set(answers))}")
        assert took < 3, (took, answers)
        assert {a for a in answers[:-1]} <= {(503, "database_unavailable"),
                                             (409, "idempotency_key_in_use")}, answers
        replay = w.billing.post(path, json=body, headers={"Idempotency-Key": "outage"})
        assert replay.get_data() == r.get_data()
        assert app.extensions["gateway.queue"].wait_idle(20)
        with app.app_context():
            db = app.extensions["gateway.db"].sessionmaker()
            orders = db.scalars(select(Order).where(Order.account_id == w.account_id)).all()
            sub = db.get(Subscription, w.subscription_id)
            account = db.get(Account, w.account_id)
            db.close()
        print(f"FAULT postgres_cut_mid_order: orders={len(orders)} lost=0 "
              f"duplicates={len(orders) - 1} status={orders[0].status}")
        assert len(orders) == 1 and orders[0].status == "completed"
        assert sub.plan == "business" and sub.version == 2
        assert account.credit_balance == 0  # nothing was applied twice
    finally:
        pricing.price = original
        proxy.cut()
        app.extensions["gateway.db"].dispose()
