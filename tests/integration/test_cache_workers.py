"""Per-process caches across processes: two gunicorn workers on PostgreSQL, a catalog change
made through one is priced by both within CACHE_MAX_AGE (1 s, the default)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import Http, TestIssuer, build_app, make_world, service_token
from tests.integration.conftest import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]


def served():
    """gunicorn's app: the gateway, each answer naming the worker process that gave it."""
    from gateway import create_app

    app = create_app()

    @app.after_request
    def _pid(response):
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response
    return app


def _quote_by_worker(base, token, sub_id, seconds=30.0) -> dict[str, str]:
    """Total due per worker, each request on a fresh connection so both workers answer (for up
    to `seconds`: under load the second worker can take a while to start serving)."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = requests.post(f"{base}/api/v1/subscriptions/{sub_id}/quotes", json={"licenses": 6},
                          headers={"Authorization": f"Bearer {token}", "Connection": "close"},
                          timeout=10)
        assert r.status_code == 200, r.text
        seen[r.headers["X-Worker-Pid"]] = r.json()["lines"][-1]["amount"]
        if len(seen) == 2:
            break
    return seen


def test_a_catalog_change_through_one_worker_is_seen_by_both(postgres_url, tmp_path):
    app = build_app(postgres_url, tmp_path, FROZEN_TODAY=None)
    admin = Http(app.test_client(), service_token(app))
    w = make_world(admin, TestIssuer.new(), "cache", country="US", currency="USD")
    token = service_token(app, "admin billing read")
    app.extensions["gateway.db"].dispose()
    port = free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=postgres_url, PYTHONPATH=str(ROOT),
               GATEWAY_INSTANCE_PATH=app.config["INSTANCE_PATH"], GATEWAY_CACHE_MAX_AGE="1")
    env.pop("GATEWAY_REDIS_URL", None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen([gunicorn, "-w", "2", "-k", "gthread", "--threads", "2",
                             "-b", f"127.0.0.1:{port}", "tests.integration.test_cache_workers:served()"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, proc, (tmp_path / "gunicorn.log").read_text)
        before = _quote_by_worker(base, token, w.subscription_id)
        assert len(before) == 2 and set(before.values()) == {before[next(iter(before))]}, before

        catalog = requests.get(f"{base}/api/v1/catalog/products/webinar",
                               headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        for plan in catalog["plans"]:
            for price in plan["prices"]:
                price["unit_amount"] = "99.00"
        body = {"name": catalog["name"], "plans": catalog["plans"]}
        changed = requests.put(f"{base}/api/v1/catalog/products/webinar", json=body, timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
        assert changed.status_code == 200, changed.text
        changed_at = time.monotonic()

        time.sleep(1.1)  # CACHE_MAX_AGE: every worker has read the version again by now
        after = _quote_by_worker(base, token, w.subscription_id)
        assert len(after) == 2, after
        assert all(amount != before[pid] for pid, amount in after.items() if pid in before), (before, after)
        assert len(set(after.values())) == 1, after
        assert time.monotonic() - changed_at < 30
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        log.close()
