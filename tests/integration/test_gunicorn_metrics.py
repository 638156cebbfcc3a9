"""gunicorn with 2 workers: one /metrics counts the requests that both of them served."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth.signing import create_client
from tests.conftest import build_app
from tests.integration.conftest import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
HITS = 120


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "gateway_http_requests":
            return sum(s.value for s in family.samples if s.name.endswith("_total")
                       and s.labels.get("route") == "/healthz")
    return 0.0


@pytest.fixture
def served(tmp_path):
    """gunicorn as README.md runs it (its config file, 2 workers) on SQLite; its access log
    gives the pid that answered each request."""
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
         "-k", "gthread", "--threads", "4",
         "-b", f"127.0.0.1:{port}", "--access-logfile", str(access_log),
         "--access-logformat", "%(p)s %(U)s %(s)s", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, server, lambda: server.stderr.read().decode()[-2000:]
                           if server.poll() is not None else "gunicorn did not start")
        yield Served(base, port, server, access_log, creds)
    finally:
        server.terminate()
        server.wait(20)


@dataclass
class Served:
    base: str
    port: int
    server: subprocess.Popen
    access_log: Path
    creds: dict


def test_metrics_add_up_the_requests_of_every_worker(served):
    base, access_log, creds = served.base, served.access_log, served.creds
    served_by: list[str] = []
    for _batch in range(5):  # until both workers have served some (the kernel picks)
        with ThreadPoolExecutor(8) as pool:  # concurrent: both workers take requests
            codes = list(pool.map(
                lambda _: requests.get(f"{base}/healthz", timeout=10).status_code, range(HITS)))
        assert codes == [200] * HITS
        time.sleep(0.5)  # the access log is written after the answer
        served_by = [line.split()[0] for line in access_log.read_text().splitlines()
                     if " /healthz 200" in line]  # the pid of each /healthz answer
        if len(set(served_by)) == 2:
            break
    assert len(set(served_by)) == 2, f"only {set(served_by)} served /healthz"
    token = requests.post(f"{base}/oauth/token", data={
        "grant_type": "client_credentials", "client_id": creds["client_id"],
        "client_secret": creds["client_secret"]}, timeout=10).json()["access_token"]
    assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
    for _ in range(4):  # whichever worker answers, the count is the total
        r = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"},
                         timeout=10)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert _healthz_count(r.text) == len(served_by)
        assert "gateway_request_seconds" not in r.text
        assert 'gateway_http_request_seconds_bucket{le="0.005",route="/healthz"}' in r.text
        assert "gateway_outbox_lag_seconds" in r.text and "gateway_queue_depth" in r.text


def _listening_sockets(pid: int, port: int) -> set[str]:
    """Inodes of the TCP sockets listening on `port` that process `pid` holds."""
    listening = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            listening.add(fields[9])
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[8:-1])
    return listening & held


def test_each_worker_accepts_on_its_own_socket(served):
    """SO_REUSEPORT: the kernel spreads connections over the workers. On one shared socket the
    workers race to accept, and clients that keep their connections (a proxy's pool, wrk) were
    seen all held by one worker, serving on one CPU while the other idled."""
    workers = [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(served.server.pid)], capture_output=True, text=True).stdout.split()]
    assert len(workers) == 2
    sockets = [_listening_sockets(pid, served.port) for pid in workers]
    assert all(len(s) == 1 for s in sockets), sockets
    assert sockets[0] != sockets[1], sockets
    # Connections kept open, as a proxy keeps them: both workers get some.
    connections = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
                   for _ in range(16)]
    for c in connections:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        assert r.status == 200
    for c in connections:
        c.close()
    time.sleep(0.5)
    pids = {line.split()[0].strip("<>") for line in served.access_log.read_text().splitlines()
            if " /healthz 200" in line}
    assert pids == {str(p) for p in workers}, pids


def test_a_worker_freezes_what_lives_once_the_app_is_loaded(tmp_path):
    """gunicorn's `post_worker_init`: the objects alive then are frozen, so that the collector's
    full passes stop walking them (a pause of every thread of the worker, decisions.md)."""
    code = ("import gc, wsgi, gateway.gunicorn_conf as conf; before = gc.get_freeze_count(); "
            "conf.post_worker_init(None); print(before, gc.get_freeze_count())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
                                               GATEWAY_INSTANCE_PATH=str(tmp_path / "instance")))
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(int, done.stdout.split()[-2:])
    assert before == 0 and after > 10_000  # the app's modules, schemas, mappers...
