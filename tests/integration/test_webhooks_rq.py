"""Webhooks delivered by a real RQ worker process on Redis, with PostgreSQL underneath."""

from __future__ import annotations

import json
import uuid

from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.test_rq_worker import _worker
from tests.integration.webhook_receiver import Receiver


def test_rq_worker_delivers_the_order_events_signed_and_in_order(postgres_url, redis_server_url,
                                                                 tmp_path):
    import os

    queue = f"hooks-{uuid.uuid4().hex[:8]}"
    app = build_app(postgres_url, tmp_path, REDIS_URL=redis_server_url, QUEUE_NAME=queue,
                    JOB_BACKOFF=[1])
    admin = Http(app.test_client(), service_token(app))
    receiver = Receiver().start()
    try:
        r = admin.post("/api/v1/webhook-endpoints", json={"url": receiver.url, "events": ["*"]})
        receiver.secret = r.get_json()["secret"]
        w = make_world(admin, TestIssuer.new(), "rqhooks", country="US", currency="USD",
                       start="2026-01-01")
        w.billing.put(f"/api/v1/accounts/{w.account_id}/payment-method", json={
            "token": "pm_1", "brand": "visa", "last4": "4242", "exp_month": 1, "exp_year": 2099})
        r = w.billing.post(f"/api/v1/accounts/{w.account_id}/orders",
                           json={"items": [{"subscription_id": w.subscription_id, "plan": "business"}]},
                           headers={"Idempotency-Key": "hooks-1", "X-Request-Id": "rq-walk-7"})
        assert r.status_code == 201, r.get_json()
        order = r.get_json()
        worker_logs = ""
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        env = dict(os.environ, GATEWAY_DATABASE_URL=postgres_url, GATEWAY_REDIS_URL=redis_server_url,
                   GATEWAY_QUEUE_NAME=queue, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"),
                   PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        for _ in range(4):  # each pass relays what the previous one's jobs recorded
            result = _worker(env)
            assert result.returncode == 0, result.stderr[-2000:]
            worker_logs += result.stderr
            if "order.completed" in receiver.types():
                break
        assert receiver.types() == ["order.created", "subscription.updated", "order.completed"]
        assert receiver.accepted[0].event["data"]["order_id"] == order["id"]
        assert receiver.refused == []
        # The job's log lines name the request that placed the order.
        applied = [json.loads(line) for line in worker_logs.splitlines()
                   if line.startswith("{") and '"order applied"' in line]
        assert [x["request_id"] for x in applied] == ["rq-walk-7"]
        # The worker's own metrics land where gunicorn's /metrics adds them up.
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(metrics_dir))
        text = generate_latest(registry).decode()
        assert 'gateway_webhook_deliveries_total{outcome="succeeded"} 3.0' in text
        assert 'gateway_orders_total{outcome="completed",route="billing_center"} 1.0' in text
    finally:
        receiver.stop()
        app.extensions["gateway.db"].dispose()
