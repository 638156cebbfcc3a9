"""Throughput, latency, SQL and CPU per request of the gateway on PostgreSQL, driven by wrk.

    .venv/bin/python bench/run.py [--pg URL] [--redis URL] [--sizes 1,1000] [--seconds 8]

For each size N: a fresh database (created here, dropped at the end) with a catalog and N
tenants, each with one self-serve account (card on file), a billing contact trusted through
one shared test issuer, and enough subscriptions for every order of the run to have its own.
Then:
1. SQL statements of one quote, one order placement and its apply job, counted in-process
   with a `before_cursor_execute` listener (request thread only), warm;
2. VACUUM ANALYZE and CHECKPOINT before each server phase; gunicorn as README.md prescribes
   for production
   (`-c python:gateway.gunicorn_conf -w 2 -k gthread --threads 4 wsgi:app`),
   in-process job queue: wrk on GET /healthz (no auth, no database), quotes, then orders (one
   per subscription, a unique Idempotency-Key each, spread over every account); waits until
   every placed order is completed;
3. the same orders phase again with Redis and one RQ worker (`flask --app wsgi worker`),
   after GET /healthz on that server (its orders are compared with it);
4. CPU per request by process group (wrk, gunicorn, RQ worker, Redis, this database's
   PostgreSQL backends), from /proc.
Last, a cProfile of in-process quotes. Client and server share the machine: compare ratios
within one run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import math
import os
import pstats
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from joserfc.jwk import RSAKey  # noqa: E402
from sqlalchemy import create_engine, event, func, select, text  # noqa: E402

HOST = "127.0.0.1"  # loopback only
AUDIENCE = "billing-gateway"
# Subscriptions reserved for each orders phase (one order each), split between wrk's threads:
# a thread that runs out starts its list again, and those orders are refused (no_change).
ORDERS_PER_PHASE = 6000
# Quotes come from the contacts of this many accounts (those active at the time), so that each
# worker's caches hold them; orders go to every account.
QUOTE_ACCOUNTS = 100
# Before an orders phase, each contact asks for this many quotes (unmeasured): gunicorn's
# workers each keep their own caches and a contact's request lands on either, so one or two
# quotes left (by estimate) a quarter of the contacts unknown to one worker (measured: RQ 5.6-6.0%
# of /healthz after 3 s of warm-up, 7.9-9.1% after 12 s, same code, interleaved).
WARM_QUOTES_PER_CONTACT = 8
WARM_SECONDS = (3, 40)  # bounds of that warm-up's length
QUOTE_BODY = {"licenses": 2}
TARGETS = {"quote_ratio": 0.15, "order_ratio": 0.06, "quote_p99_ms": 100.0}
PRICES = {"lite": ("19.00", "190.00"), "standard": ("29.00", "290.00"), "business": ("49.00", "490.00")}
CATALOG = {"name": "Webinar", "plans": [
    {"code": code, "name": code.title(), "rank": rank, "prices": [
        {"currency": "USD", "billing_period": period, "unit_amount": amount}
        for period, amount in zip(("monthly", "annual"), PRICES[code], strict=True)]}
    for rank, code in enumerate(PRICES, start=1)]}
# README.md, "Running in production" (its config file: metrics in multiprocess mode).
GUNICORN = ["-c", "python:gateway.gunicorn_conf", "-w", "2", "-k", "gthread", "--threads", "4"]


# -- set-up ----------------------------------------------------------------------------------
@dataclass
class Seeded:
    n: int
    url: str
    name: str
    instance: Path
    issuer_key: RSAKey
    issuer_url: str
    accounts: list[tuple[str, str]] = field(default_factory=list)  # (account_id, subject)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)  # account_id -> ids
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, subject: str, ttl: int = 3600) -> str:
        if subject not in self.tokens:
            from gateway.auth.signing import mint

            self.tokens[subject] = mint(self.issuer_key, issuer=self.issuer_url, audience=AUDIENCE,
                                        subject=subject, ttl=ttl, client_id="bench")
        return self.tokens[subject]

    def take(self, count: int, accounts: int | None = None) -> list[tuple[str, str, str]]:
        """`count` (account, subject, subscription), round-robin over the (first `accounts`)
        accounts, each subscription handed out once."""
        out, k = [], 0
        pool = self.accounts[:accounts] if accounts else self.accounts
        while len(out) < count:
            account_id, subject = pool[k % len(pool)]
            subs = self.subscriptions[account_id]
            if subs:
                out.append((account_id, subject, subs.pop()))
            elif not any(self.subscriptions[a] for a, _ in pool):
                raise RuntimeError("not enough subscriptions seeded")
            k += 1
        return out


def admin_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def create_database(base_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    engine = create_engine(admin_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, name: str) -> None:
    engine = create_engine(admin_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def settle(url: str) -> str:
    """VACUUM ANALYZE, then CHECKPOINT: a phase starts with the tables' statistics known (as
    autovacuum would have them; the test server runs without it) and without the writes before
    it (the seed, the previous phase) still to be flushed to disk during its measurement.
    Returns what was done, for the report (CHECKPOINT needs a superuser or pg_checkpoint)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    done = []
    try:
        with engine.connect() as c:
            for statement in ("VACUUM ANALYZE", "CHECKPOINT"):
                try:
                    c.execute(text(statement))
                    done.append(statement)
                except Exception as exc:  # not allowed here: say so, measure anyway
                    done.append(f"no {statement} ({type(exc).__name__})")
    finally:
        engine.dispose()
    return ", ".join(done)


class HeldQueue:
    """Collects jobs instead of running them (statement counts: the test thread runs them)."""

    def __init__(self):
        self.jobs = []

    def ping(self):
        return True

    def enqueue(self, func, *args, **kwargs):
        self.jobs.append((func, args))

    def enqueue_many(self, calls):
        for job, args, _options in calls:
            self.jobs.append((job, tuple(args)))


def make_app(url: str, instance: Path, **overrides):
    from gateway import create_app
    from gateway.logs import OUR_LOGGERS

    settings = {"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "REDIS_URL": None}
    settings.update(overrides)
    app = create_app(settings)
    for name in OUR_LOGGERS:  # the in-process steps' request lines would drown the report
        logging.getLogger(name).setLevel(logging.WARNING)
    real = app.extensions["gateway.queue"]
    real.relay = None  # no periodic pass in this process
    held = HeldQueue()
    app.extensions["gateway.queue"] = held
    return app, real, held


def call(client, method, path, token=None, **kw):
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = client.open(path, method=method, headers=headers, **kw)
    if r.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.get_data(as_text=True)[:300]}")
    return r.get_json()


def seed(url: str, name: str, instance: Path, n: int, subs_total: int) -> Seeded:
    from gateway.auth.signing import create_client
    from gateway.migrate import upgrade
    from tenants.db import new_id
    from tenants.models import Account, Contact, Issuer, Membership, Subscription, Tenant, TenantIssuer

    upgrade(url)
    app, real, _ = make_app(url, instance)
    key = RSAKey.generate_key(2048, parameters={"kid": "bench-1"})
    s = Seeded(n, url, name, instance, key, "https://idp.bench.example")
    client = app.test_client()
    sm = app.extensions["gateway.db"].sessionmaker
    with app.app_context():
        db = sm()
        creds = create_client(db, "bench", "admin billing read")
        db.close()
    admin = client.post("/oauth/token", data={"grant_type": "client_credentials", **creds}).get_json()
    admin = admin["access_token"]
    call(client, "PUT", "/api/v1/catalog/products/webinar", admin, json=CATALOG)
    issuer = {"issuer": s.issuer_url, "audience": AUDIENCE,
              "jwks": {"keys": [dict(key.as_dict(private=False), alg="RS256")]}}
    start = datetime.now(UTC).date() - timedelta(days=10)
    per_account = -(-subs_total // n)
    subs = []
    rows = []  # tenants after the first: written directly (the API path is shown by the first)
    for k in range(n):
        subject = f"billing-{k}@bench.example"
        if k == 0:
            tenant = call(client, "POST", "/api/v1/tenants", admin, json={
                "name": f"Bench {k}", "slug": f"bench-{k}", "issuers": [issuer],
                # Pinned self-serve: thousands of seats on one account stay self-serve (N=1).
                "policy": {"segment": "self_serve"}})
            account = call(client, "POST", f"/api/v1/tenants/{tenant['id']}/accounts", admin, json={
                "name": f"Bench {k} Inc", "country": "US", "currency": "USD",
                "billing_channel": "online", "payment_terms": "card"})
            call(client, "POST", f"/api/v1/accounts/{account['id']}/contacts", admin, json={
                "subject": subject, "name": f"Billing {k}", "email": subject,
                "roles": ["billing_contact"]})
            call(client, "PUT", f"/api/v1/accounts/{account['id']}/payment-method", admin, json={
                "token": f"pm_bench_{k}", "brand": "visa", "last4": "4242", "exp_month": 12,
                "exp_year": 2099})
            tenant_id, account_id = tenant["id"], account["id"]
            db = sm()
            issuer_id = db.scalar(select(Issuer.id).where(Issuer.url == s.issuer_url))
            db.close()
        else:
            tenant_id, account_id, contact_id = new_id("ten"), new_id("acc"), new_id("con")
            rows += [Tenant(id=tenant_id, name=f"Bench {k}", slug=f"bench-{k}", segment="self_serve"),
                     TenantIssuer(tenant_id=tenant_id, issuer_id=issuer_id),
                     Account(id=account_id, tenant_id=tenant_id, name=f"Bench {k} Inc",
                             country="US", currency="USD", billing_channel="online",
                             payment_terms="card", pm_token=f"pm_bench_{k}", pm_brand="visa",
                             pm_last4="4242", pm_exp_month=12, pm_exp_year=2099),
                     Contact(id=contact_id, tenant_id=tenant_id, issuer_id=issuer_id,
                             subject=subject, name=f"Billing {k}", email=subject),
                     Membership(contact_id=contact_id, account_id=account_id,
                                roles=["billing_contact"])]
        s.accounts.append((account_id, subject))
        for _ in range(per_account):
            subs.append(Subscription(
                tenant_id=tenant_id, account_id=account_id, product="webinar",
                plan="standard", licenses=1, billing_period="monthly", status="active",
                current_period_start=start, current_period_end=start + timedelta(days=30)))
    db = sm()
    for kind in (Tenant, TenantIssuer, Account, Contact, Membership):  # in dependency order
        db.add_all([r for r in rows if isinstance(r, kind)])
        db.flush()
    db.commit()
    db.close()
    db = sm()
    db.add_all(subs)
    db.commit()
    for sub in subs:
        s.subscriptions.setdefault(sub.account_id, []).append(sub.id)
    db.close()
    real.stop()
    app.extensions["gateway.db"].dispose()
    return s


# -- SQL statements per request (in-process) --------------------------------------------------
def count_sql(seeded: Seeded) -> dict:
    """Statements (and commits) of one quote, one order placement and its apply job, warm."""
    from adapters.jobs import resolve

    app, real, held = make_app(seeded.url, seeded.instance, CACHE_MAX_AGE=3600)
    engine = app.extensions["gateway.db"].engine
    me = threading.get_ident()
    statements, commits = [], []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == me:
            statements.append(statement)

    @event.listens_for(engine, "commit")
    def _commit(conn):
        if threading.get_ident() == me:
            commits.append(len(statements))  # where in the statements each commit fell

    client = app.test_client()
    out = {"cold_quote": [], "quote": [], "order": [], "order_commits": [], "apply": [],
           "mail": []}
    picks = seeded.take(3)  # the first round warms the caches
    for round_, (account_id, subject, sub_id) in enumerate(picks):
        token = seeded.token(subject)
        statements.clear()
        call(client, "POST", f"/api/v1/subscriptions/{sub_id}/quotes", token, json=QUOTE_BODY)
        out["cold_quote"].append(len(statements))  # this contact's and tenant's first request
        statements.clear()
        call(client, "POST", f"/api/v1/subscriptions/{sub_id}/quotes", token, json=QUOTE_BODY)
        out["quote"].append(len(statements))
        statements.clear()
        commits.clear()
        call(client, "POST", f"/api/v1/accounts/{account_id}/orders", token,
             json={"items": [{"subscription_id": sub_id, **QUOTE_BODY}]},
             headers={"Idempotency-Key": f"count-{round_}"})
        out["order"].append(len(statements))
        out["order_commits"].append(len(commits))
        real.wait_idle(10)  # the relay hands the job to the held queue
        while held.jobs:  # the apply job (counted), then what it hands on, if anything
            job, job_args = held.jobs.pop(0)
            statements.clear()
            commits.clear()
            with app.app_context():
                resolve(job)(*job_args)
            if job.endswith(".process_order"):
                # One transaction: the apply and what the completion mail needs; the job then
                # sends the mail itself (statements after the commit: none expected).
                applied = commits[0]
                out["apply"].append(applied)
                out["mail"].append(len(statements) - applied)
            real.wait_idle(10)
    real.stop()
    app.extensions["gateway.db"].dispose()
    return {k: v[1:] for k, v in out.items()}


# -- profile ---------------------------------------------------------------------------------
def by_package(stats: pstats.Stats) -> str:
    """Own (not cumulative) time summed per library / project package."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        if "site-packages/" in filename:
            key = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith(str(ROOT)):
            key = "project:" + filename[len(str(ROOT)) + 1:].split("/", 1)[0]
        elif filename == "~":
            key = "builtins (C calls: sockets, hashing, crypto...)"
        else:
            key = "stdlib"
        totals[key] = totals.get(key, 0.0) + tottime
    whole = sum(totals.values()) or 1.0
    return "\n".join(f"  {v:7.3f}s {100 * v / whole:5.1f}%  {k}"
                     for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:12])


def profile_quotes(seeded: Seeded, count: int = 300, warm: int = 20) -> str:
    """cProfile of in-process quotes (test client, one thread, warm): where a quote's time goes."""
    app, real, _ = make_app(seeded.url, seeded.instance)
    client = app.test_client()
    work = [(a, seeded.token(subj), sub) for a, subj, sub in seeded.take(count + warm)]
    for _, token, sub_id in work[:warm]:
        call(client, "POST", f"/api/v1/subscriptions/{sub_id}/quotes", token, json=QUOTE_BODY)
    t0 = time.perf_counter()
    for _, token, sub_id in work[warm:]:
        call(client, "POST", f"/api/v1/subscriptions/{sub_id}/quotes", token, json=QUOTE_BODY)
    plain = 1000 * (time.perf_counter() - t0) / count
    prof = cProfile.Profile()
    prof.enable()
    for _, token, sub_id in work[warm:]:
        call(client, "POST", f"/api/v1/subscriptions/{sub_id}/quotes", token, json=QUOTE_BODY)
    prof.disable()
    real.stop()
    app.extensions["gateway.db"].dispose()
    stats = pstats.Stats(prof)
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats("tottime").print_stats(20)
    cum = io.StringIO()
    stats.stream = cum
    stats.sort_stats("cumulative").print_stats(25)
    return (f"== in-process quote: {plain:.2f} ms each without the profiler ({count} after {warm}"
            f" warm, one thread, test client) ==\n== cProfile of {count} quotes: own time by "
            f"package ==\n{by_package(stats)}\n== top by own time ==\n{_trim(buf.getvalue())}\n"
            f"== top by cumulative time ==\n{_trim(cum.getvalue())}")


def _trim(report: str) -> str:
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.replace(str(ROOT) + "/", "").replace(
        str(Path(sys.executable).parent.parent) + "/lib/", "") for line in lines[start:] if line)


# -- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_up(base: str, proc: subprocess.Popen, log: Path) -> None:
    import requests

    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not come up; see {log}")


def env_for(seeded: Seeded, redis: str | None, queue_name: str) -> dict:
    env = dict(os.environ, GATEWAY_DATABASE_URL=seeded.url, PYTHONPATH=str(ROOT),
               GATEWAY_INSTANCE_PATH=str(seeded.instance), GATEWAY_QUEUE_NAME=queue_name)
    env.pop("GATEWAY_REDIS_URL", None)
    if redis:
        env["GATEWAY_REDIS_URL"] = redis
    return env


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class CpuMeter:
    """CPU seconds by process group, from /proc: wrk, the gunicorn session, the RQ worker's
    session, redis-server, and the PostgreSQL backends serving this database."""

    def __init__(self, database: str, sessions: dict[str, int]):
        self.database = database
        self.sessions = sessions
        self.tick = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, dict[int, float]]:
        groups: dict[str, dict[int, float]] = {"wrk": {}, **{k: {} for k in self.sessions},
                                               "postgres": {}, "redis": {}}
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                raw = (entry / "stat").read_text()
                comm = raw[raw.index("(") + 1:raw.rindex(")")]
                fields = raw[raw.rindex(")") + 2:].split()
                # Its own time and its ended children's (an RQ work horse, a gunicorn worker
                # that was replaced): a process gone before the snapshot is counted by its parent.
                cpu = sum(int(x) for x in fields[11:15]) / self.tick
                session = int(fields[3])
                group = next((k for k, v in self.sessions.items() if v == session), None)
                if group is None:
                    if comm == "wrk":
                        group = "wrk"
                    elif comm.startswith("redis-server"):
                        group = "redis"
                    elif comm.startswith("postgres"):
                        cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                        if f" {self.database} " in cmdline:
                            group = "postgres"
                if group is not None:
                    groups[group][int(entry.name)] = cpu
            except (OSError, ValueError):
                continue
        return groups

    @staticmethod
    def spent(before, after) -> dict[str, float]:
        return {g: sum(v - before[g].get(pid, 0.0) for pid, v in after[g].items()) for g in after}


# -- load ------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    requests: int
    ok: int
    not_ok: int
    seconds: float
    p50: float
    p99: float
    cpu: dict[str, float]
    socket_errors: int = 0
    note: str = ""
    completed: int | None = None  # orders phases: how many of those placed were carried out
    placed: int | None = None
    not_ok_by_status: dict[str, int] = field(default_factory=dict)
    refusals: dict[str, int] = field(default_factory=dict)  # orders: audited error codes
    probe_ms: float = 0.0  # `probe()` just before the phase

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def cpu_line(self) -> str:
        total = self.requests or 1
        return "  ".join(f"{k} {1000 * v / total:.2f}" for k, v in self.cpu.items() if v) + \
            f"  | all {1000 * sum(self.cpu.values()) / total:.2f} ms"


def probe() -> float:
    """Milliseconds a fixed piece of pure Python takes, single-threaded, with the gateway idle:
    the speed of this (shared) machine at the moment, printed beside each phase."""
    started, total = time.perf_counter(), 0
    for i in range(300_000):
        total += i * i % 7
    return 1000 * (time.perf_counter() - started)


def wrk(name: str, url: str, script: Path, args: list[str], seconds: float, connections: int,
        threads: int, meter: CpuMeter) -> Phase:
    speed = probe()
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
           "--timeout", "10s", "-s", str(script), url]
    if args:
        cmd += ["--", *args]
    before = meter.snapshot()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # wrk has exited: its CPU from its rusage
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out[-2000:]}")
    cpu = CpuMeter.spent(before, meter.snapshot())
    cpu["wrk"] = usage.ru_utime + usage.ru_stime
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    d = json.loads(line[len("WRKJSON "):])
    refused: dict[str, int] = {}
    for status, count in d.get("not_ok_by_status", []):
        refused[status] = refused.get(status, 0) + count
    return Phase(name, d["requests"], d["ok"], d["not_ok"], d["duration_us"] / 1e6,
                 d["p50_us"] / 1000, d["p99_us"] / 1000, cpu, d["socket_errors"],
                 not_ok_by_status=refused, probe_ms=speed)


def warm_up(base: str, lua: Path, active: Path, lines: int, seconds: float, connections: int,
            threads: int, meter: CpuMeter) -> str:
    """Quotes from every account's contact for `seconds`, unmeasured; says how many each."""
    phase = wrk("warm", base, lua, [str(active), str(threads), "quote"], seconds, connections,
                threads, meter)
    return f"{seconds:g} s, {phase.requests / lines:.1f} quotes per contact"


def request_file(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(f"{p}\t{t}\t{b}\n" for p, t, b in rows))
    return path


def orders_file(path: Path, seeded: Seeded, count: int) -> Path:
    return request_file(path, [(f"/api/v1/accounts/{a}/orders", seeded.token(subj),
                                json.dumps({"items": [{"subscription_id": sub, **QUOTE_BODY}]}))
                               for a, subj, sub in seeded.take(count)])


def refusals(url: str) -> dict[str, int]:
    """Orders refused so far, by error code (each refusal is audited with its code)."""
    from gateway.orders.models import AuditRecord

    engine = create_engine(url)
    try:
        with engine.connect() as c:
            code = AuditRecord.data["error"].as_string()
            return dict(c.execute(select(code, func.count()).where(
                AuditRecord.action == "order.refused").group_by(code)).all())
    finally:
        engine.dispose()


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def wait_completed(url: str, timeout: float) -> tuple[int, int, float]:
    """(completed, placed) orders of the load (not the counting rounds), once all are done."""
    from gateway.orders.models import Order

    engine = create_engine(url)
    t0 = time.perf_counter()
    try:
        while True:
            with engine.connect() as c:
                rows = dict(c.execute(select(Order.status, func.count())
                                      .where(~Order.idempotency_key.like("count-%"))
                                      .group_by(Order.status)).all())
            placed, done = sum(rows.values()), rows.get("completed", 0)
            if done >= placed or time.perf_counter() - t0 > timeout:
                return done, placed, time.perf_counter() - t0
            time.sleep(0.2)
    finally:
        engine.dispose()


def run_size(seeded: Seeded, args, work: Path) -> dict:
    out: dict = {"phases": []}
    queue_name = f"bench-{secrets.token_hex(4)}"
    port = free_port()
    base = f"http://{HOST}:{port}"
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    flask = str(Path(sys.executable).with_name("flask"))
    serve_cmd = [gunicorn, *GUNICORN, "-b", f"{HOST}:{port}", "--log-level", "warning", "wsgi:app"]
    lua = BENCH / "load.lua"
    quotes = request_file(work / f"quotes-{seeded.n}.tsv", [
        (f"/api/v1/subscriptions/{sub}/quotes", seeded.token(subj), json.dumps(QUOTE_BODY))
        for a, subj, sub in seeded.take(500, accounts=QUOTE_ACCOUNTS)])
    # Before each orders phase, every account's contact asks for quotes (as a contact does before
    # placing an order), so that the workers have met them: the orders phase measures the orders
    # of active contacts, not each contact's first request in a process (counted apart above).
    active_lines = max(len(seeded.accounts), 50)  # a line per thread
    active = request_file(work / f"active-{seeded.n}.tsv", [
        (f"/api/v1/subscriptions/{sub}/quotes", seeded.token(subj), json.dumps(QUOTE_BODY))
        for a, subj, sub in seeded.take(active_lines)])
    orders_inproc = orders_file(work / f"orders-a-{seeded.n}.tsv", seeded, args.orders)
    orders_rq = orders_file(work / f"orders-b-{seeded.n}.tsv", seeded, args.orders)

    # (a) in-process queue
    out["settled"] = settle(seeded.url)
    proc = start(serve_cmd, env_for(seeded, None, queue_name), work / "gunicorn-a.log")
    try:
        wait_up(base, proc, work / "gunicorn-a.log")
        meter = CpuMeter(seeded.name, {"gunicorn": proc.pid})
        c, t = args.connections, args.threads
        wrk("warm", f"{base}/healthz", BENCH / "healthz.lua", [], 2, c, t, meter)
        wrk("warm", base, lua, [str(quotes), str(t), "quote"], 3, c, t, meter)
        out["phases"].append(wrk("healthz", f"{base}/healthz", BENCH / "healthz.lua", [],
                                 args.seconds, c, t, meter))
        quote = wrk("quote", base, lua, [str(quotes), str(t), "quote"], args.seconds, c, t, meter)
        out["phases"].append(quote)
        # Long enough, at the quote rate just measured, for every contact to ask several times.
        lo, hi = WARM_SECONDS
        rate = max(quote.rate, 1.0)  # a phase of failures still gets its warm-up, bounded
        warm = min(hi, max(lo, math.ceil(WARM_QUOTES_PER_CONTACT * active_lines / rate)))
        out["warm"] = [warm_up(base, lua, active, active_lines, warm, c, t, meter)]
        before, refused = meter.snapshot(), refusals(seeded.url)
        phase = wrk("order", base, lua, [str(orders_inproc), str(t), "order"], args.seconds, c, t,
                    meter)
        phase.refusals = _diff(refusals(seeded.url), refused)
        done, placed, waited = wait_completed(seeded.url, 120)
        phase.cpu = {**CpuMeter.spent(before, meter.snapshot()), "wrk": phase.cpu["wrk"]}
        phase.completed, phase.placed = done, placed
        phase.note = (f"in-process queue: {done}/{placed} completed, {waited:.1f}s after the "
                      f"phase; CPU includes applying")
        out["phases"].append(phase)
    finally:
        stop(proc)

    # (b) Redis and one RQ worker
    if args.redis:
        settle(seeded.url)
        env = env_for(seeded, args.redis, queue_name)
        proc = start(serve_cmd, env, work / "gunicorn-b.log")
        worker = start([flask, "--app", "wsgi", "worker"], env, work / "worker.log")
        try:
            wait_up(base, proc, work / "gunicorn-b.log")
            meter = CpuMeter(seeded.name, {"gunicorn": proc.pid, "rq-worker": worker.pid})
            c, t = args.connections, args.threads
            wrk("warm", f"{base}/healthz", BENCH / "healthz.lua", [], 2, c, t, meter)
            # The bare request of this server too: the RQ orders are compared with the server
            # they ran on, measured a few seconds before them, not with another process's
            # measured a minute earlier (the machine's speed drifts; both ratios are printed).
            out["phases"].append(wrk("healthz-rq", f"{base}/healthz", BENCH / "healthz.lua", [],
                                     args.seconds, c, t, meter))
            out["warm"].append(warm_up(base, lua, active, active_lines, warm, c, t, meter))
            base_done = wait_completed(seeded.url, 0)[0]
            before, refused = meter.snapshot(), refusals(seeded.url)
            phase = wrk("order-rq", base, lua, [str(orders_rq), str(t), "order"], args.seconds, c,
                        t, meter)
            phase.refusals = _diff(refusals(seeded.url), refused)
            done, placed, waited = wait_completed(seeded.url, 300)
            phase.cpu = {**CpuMeter.spent(before, meter.snapshot()), "wrk": phase.cpu["wrk"]}
            phase.completed, phase.placed = done - base_done, placed - base_done
            phase.note = (f"Redis + 1 RQ worker: {done - base_done}/{placed - base_done} "
                          f"completed, {waited:.1f}s after the phase; CPU includes applying")
            out["phases"].append(phase)
        finally:
            stop(worker)
            stop(proc)
            from redis import Redis

            r = Redis.from_url(args.redis)
            for k in r.scan_iter(f"rq:*{queue_name}*"):
                r.delete(k)
    return out


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def report(n: int, counts: dict, result: dict, connections: int) -> bool:
    phases = {p.name: p for p in result["phases"]}
    bare = phases["healthz"].rate
    # Each phase against the bare request of its own server (the RQ phase has its own).
    own = {p.name: phases["healthz-rq"].rate if p.name.endswith("-rq") else bare
           for p in result["phases"]}
    print(f"\n== N={n} accounts (load average {loadavg()}; before each server phase: "
          f"{result.get('settled', 'nothing')}) ==")
    print(f"SQL statements per request (in-process, warm): quote {counts['quote']}, "
          f"order placement {counts['order']} with {counts['order_commits']} commit(s), "
          f"apply job {counts['apply']} in one transaction, the completion mail's reads included "
          f"(statements after its commit: {counts['mail']}); "
          f"a contact's first quote in a process "
          f"{counts['cold_quote']} (its principal and tenant policy not cached yet)")
    print(f"{'phase':<10} {'requests':>8} {'ok':>7} {'not ok':>6} {'req/s':>8} {'/healthz':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'probe ms':>8}")
    for p in result["phases"]:
        print(f"{p.name:<10} {p.requests:>8} {p.ok:>7} {p.not_ok + p.socket_errors:>6} "
              f"{p.rate:>8.1f} {p.rate / own[p.name]:>8.3f} {p.p50:>7.2f} {p.p99:>7.2f} "
              f"{p.probe_ms:>8.1f}")
    print("(probe ms: a fixed piece of Python timed just before the phase, the gateway idle; "
          "it moves with the machine's speed)")
    if "order-rq" in phases:
        print(f"(/healthz: each phase against its own server's; order-rq against the first "
              f"server's healthz: {phases['order-rq'].rate / bare:.3f})")
    print(f"(unmeasured warm-up before each orders phase: quotes from every account's contact: "
          f"{'; '.join(result.get('warm', []))})")
    print("CPU ms per request by process:")
    for p in result["phases"]:
        print(f"  {p.name:<10} {p.cpu_line()}")
    for p in result["phases"]:
        if p.note:
            print(f"  {p.name}: {p.note}")
        if p.not_ok_by_status or p.refusals:
            print(f"  {p.name}: not ok by status {p.not_ok_by_status}; refusals audited by code "
                  f"{p.refusals}")
    q, o = phases["quote"], phases["order"]
    # The orders target is for orders that do not conflict (issue 11: "spread over many accounts
    # and subscriptions"). With fewer accounts than connections, concurrent orders wait on the
    # same account's row lock by construction: shown, not judged.
    orders = {"order >= 6% of /healthz": o.rate / bare >= TARGETS["order_ratio"],
              **({"order (RQ) >= 6% of /healthz":
                  phases["order-rq"].rate / own["order-rq"] >= TARGETS["order_ratio"]}
                 if "order-rq" in phases else {})}
    spread = n > connections
    if not spread:
        print(f"orders on {n} account(s) for {connections} connections conflict by construction "
              f"(one row lock): the orders target (orders spread over many accounts) is not "
              f"judged here; measured " + ", ".join(
                  f"{p.name} {100 * p.rate / own[p.name]:.1f}%" for p in result["phases"]
                  if p.name.startswith("order")))
    verdict = {"quote >= 15% of /healthz": q.rate / bare >= TARGETS["quote_ratio"],
               **(orders if spread else {}),
               "quote p99 <= 100 ms": q.p99 <= TARGETS["quote_p99_ms"],
               "quote <= 3 statements": max(counts["quote"]) <= 3,
               "order <= 8 statements, 1 commit": max(counts["order"]) <= 8
               and set(counts["order_commits"]) == {1},
               "apply <= 6 statements": max(counts["apply"]) <= 6,
               "every order completed": all(p.completed == p.placed
                                            for p in result["phases"] if p.placed is not None)}
    print("targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in verdict.items()))
    return all(verdict.values())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg", default=os.environ.get("GATEWAY_BENCH_POSTGRES_URL")
                   or os.environ.get("GATEWAY_TEST_POSTGRES_URL")
                   or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default=os.environ.get("GATEWAY_BENCH_REDIS_URL")
                   or os.environ.get("GATEWAY_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0",
                   help="'' to skip the RQ phase")
    p.add_argument("--sizes", default="1,1000", help="accounts (one tenant each) per database")
    p.add_argument("--seconds", type=float, default=8.0, help="per wrk phase")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--orders", type=int, default=ORDERS_PER_PHASE,
                   help="subscriptions reserved per orders phase (one order each)")
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the databases and the work folder")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (make bench installs it: apt-get install wrk)")
    sizes = [int(n) for n in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    created, ok, last = [], True, None
    print(f"bench: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, wrk -t{args.threads} "
          f"-c{args.connections} -d{args.seconds:g}s; gunicorn {' '.join(GUNICORN)} wsgi:app on "
          f"{HOST}; load average {loadavg()} (others' work on the machine skews absolute figures)")
    try:
        for n in sizes:
            name = f"gw_bench_{secrets.token_hex(4)}_{n}"
            url = create_database(args.pg, name)
            created.append(name)
            t0 = time.perf_counter()
            seeded = seed(url, name, work / f"instance-{n}", n, 2 * args.orders + 2500)
            print(f"seeded N={n}: {n} tenants/accounts, "
                  f"{sum(map(len, seeded.subscriptions.values()))} subscriptions in "
                  f"{time.perf_counter() - t0:.1f}s (database {name})", flush=True)
            counts = count_sql(seeded)
            result = run_size(seeded, args, work)
            ok = report(n, counts, result, args.connections) and ok
            last = seeded
        if last is not None and not args.no_profile:
            print()
            print(profile_quotes(last))
    finally:
        if args.keep:
            print(f"kept: databases {created}, folder {work}")
        else:
            for name in created:
                drop_database(args.pg, name)
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
