"""gunicorn with 2 workers: one /metrics counts the requests that both of them served."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth.signing import create_client
from tests.conftest import build_app
from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
HITS = 120


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "gateway_http_requests":
            return sum(s.value for s in family.samples if s.name.endswith("_total")
                       and s.labels.get("route") == "/healthz")
    return 0.0


def test_metrics_add_up_the_requests_of_every_worker(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'g.db'}"
    app = build_app(db_url, tmp_path)  # migrates, and makes the signing key the workers load
    with app.app_context():
        db = app.extensions["gateway.db"].sessionmaker()
        creds = create_client(db, "prometheus", "read")
        db.close()
    app.extensions["gateway.db"].dispose()
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    access_log = tmp_path / "access.log"
    env = dict(os.environ, GATEWAY_DATABASE_URL=db_url, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"),
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:gateway.gunicorn_conf", "-w", "2",
         "-b", f"127.0.0.1:{port}", "--access-logfile", str(access_log),
         "--access-logformat", "%(p)s %(U)s %(s)s", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        served: list[str] = []
        for _batch in range(5):  # until both workers have served some (the kernel picks)
            with ThreadPoolExecutor(8) as pool:  # concurrent: both workers take requests
                codes = list(pool.map(
                    lambda _: requests.get(f"{base}/healthz", timeout=10).status_code, range(HITS)))
            assert codes == [200] * HITS
            time.sleep(0.5)  # the access log is written after the answer
            served = [line.split()[0] for line in access_log.read_text().splitlines()
                      if " /healthz 200" in line]  # the pid of each /healthz answer
            if len(set(served)) == 2:
                break
        assert len(set(served)) == 2, f"only {set(served)} served /healthz"
        token = requests.post(f"{base}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": creds["client_id"],
            "client_secret": creds["client_secret"]}, timeout=10).json()["access_token"]
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
        for _ in range(4):  # whichever worker answers, the count is the total
            r = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"},
                             timeout=10)
            assert r.status_code == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert _healthz_count(r.text) == len(served)
            assert "gateway_request_seconds" not in r.text
            assert 'gateway_http_request_seconds_bucket{le="0.005",route="/healthz"}' in r.text
            assert "gateway_outbox_lag_seconds" in r.text and "gateway_queue_depth" in r.text
    finally:
        server.terminate()
        server.wait(20)
