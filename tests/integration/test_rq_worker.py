"""Orders carried out by a real RQ worker process on Redis, with PostgreSQL underneath."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

from sqlalchemy import func, select

from adapters.models import LedgerEntry, OutboxMessage
from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.conftest import wait_until_listening


def _worker(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
                          env=env, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


def _setup(postgres_url, redis_url, tmp_path, queue):
    app = build_app(postgres_url, tmp_path, REDIS_URL=redis_url, QUEUE_NAME=queue, JOB_BACKOFF=[1])
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "rq", country="US", currency="USD", start="2026-01-01")
    w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
        "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
    env = dict(os.environ, GATEWAY_DATABASE_URL=postgres_url, GATEWAY_REDIS_URL=redis_url,
               GATEWAY_QUEUE_NAME=queue, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    return app, w, env


def _place(w, key, plan):
    r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                       json={"items": [{"subscription_id": w.subscription_id, "plan": plan}]},
                       headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_rq_worker_process_completes_the_order_once(postgres_url, redis_server_url, tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    app, w, env = _setup(postgres_url, redis_server_url, tmp_path, queue)
    order = _place(w, "rq-1", "business")
    assert order["status"] == "processing"
    result = _worker(env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert w.billing.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "completed"
    # a second worker pass (a duplicate delivery) changes nothing
    app.extensions["gateway.queue"].enqueue("gateway.orders.jobs.process_order", order["id"])
    assert _worker(env).returncode == 0
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        assert db.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        db.close()
    app.extensions["gateway.db"].dispose()


def test_orders_accepted_while_redis_is_down_are_delivered_later(postgres_url, redis_server_url,
                                                                 tmp_path):
    queue = f"test-{uuid.uuid4().hex[:8]}"
    app, w, env = _setup(postgres_url, redis_server_url, tmp_path, queue)
    from adapters.jobs import RQQueue

    real, relayer = app.extensions["gateway.queue"], app.extensions["gateway.relayer"]
    down = RQQueue("redis://127.0.0.1:1/0", 1, [1], queue)  # nothing listens
    # Both the request and the relay thread it wakes see Redis down.
    app.extensions["gateway.queue"], relayer.queue = down, down
    order = _place(w, "down-1", "business")
    relayer.stop()  # its pass (which found Redis down) is over: nothing relays behind the check
    assert order["status"] == "processing"
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        assert db.scalar(select(func.count()).select_from(OutboxMessage)
                         .where(OutboxMessage.dispatched_at.is_(None))) == 1
        db.close()
    app.extensions["gateway.queue"], relayer.queue = real, real
    result = _worker(env)  # the worker's relay delivers what waited in the outbox
    assert result.returncode == 0, result.stderr[-2000:]
    assert w.billing.get(f"/api/v1/orders/{order['id']}").get_json()["status"] == "completed"
    app.extensions["gateway.db"].dispose()


def test_rq_worker_leaves_out_redundant_heartbeats_and_state_writes(redis_server_url, monkeypatch):
    from redis import Redis
    from rq import Queue

    from adapters import worker as worker_mod

    conn = Redis.from_url(redis_server_url)
    queue = Queue(f"beat-{uuid.uuid4().hex[:8]}", connection=conn)
    worker = worker_mod.worker_class()([queue], connection=conn)
    clock = [1000.0]
    monkeypatch.setattr(worker_mod.time, "monotonic", lambda: clock[0])
    try:
        worker.heartbeat()
        first = conn.hget(worker.key, "last_heartbeat")
        conn.hset(worker.key, "last_heartbeat", "marker")
        clock[0] += worker_mod.HEARTBEAT_EVERY / 2
        worker.heartbeat()  # too soon: not sent
        assert conn.hget(worker.key, "last_heartbeat") == b"marker"
        with conn.pipeline() as pipe:  # one pipelined with a job's start always is
            worker.heartbeat(pipeline=pipe)
            pipe.execute()
        assert conn.hget(worker.key, "last_heartbeat") not in (b"marker", None)
        conn.hset(worker.key, "last_heartbeat", "marker")
        clock[0] += worker_mod.HEARTBEAT_EVERY
        worker.heartbeat()
        assert conn.hget(worker.key, "last_heartbeat") not in (b"marker", None, first)
        assert conn.ttl(worker.key) > 60

        worker.set_state("idle")
        conn.hset(worker.key, "state", "marker")
        worker.set_state("idle")  # unchanged: not written again
        assert conn.hget(worker.key, "state") == b"marker"
        worker.set_state("busy")
        assert conn.hget(worker.key, "state") == b"busy"
    finally:
        conn.delete(worker.key, worker.executions_key)


def test_a_running_worker_relays_the_web_s_commit_at_once(postgres_url, redis_server_url, tmp_path):
    """On PostgreSQL the request's process only relays periodically (a minute, here): the
    worker, notified by the commit, hands the order to the queue and carries it out."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    app, w, env = _setup(postgres_url, redis_server_url, tmp_path, queue)
    app.config["TICK_SECONDS"] = app.extensions["gateway.relayer"].interval = 60
    env["GATEWAY_TICK_SECONDS"] = "60"
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        wait_until_listening(app.extensions["gateway.db"].engine)
        order = _place(w, "notified-1", "business")
        deadline, status = time.monotonic() + 10, None
        while time.monotonic() < deadline and status != "completed":
            time.sleep(0.1)
            status = w.billing.get(f"/api/v1/orders/{order['id']}").get_json()["status"]
        assert status == "completed"
    finally:
        worker.terminate()
        assert worker.wait(30) is not None
        app.extensions["gateway.db"].dispose()

