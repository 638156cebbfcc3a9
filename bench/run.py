"""Throughput and SQL-count benchmark of the gateway on PostgreSQL (run by hand, not in CI).

    .venv/bin/python bench/run.py [--pg URL] [--sizes 1,200] [--seconds 8] [--clients 16]

For each size N it creates a fresh database, migrates it, seeds a catalog and N tenants (one
self-serve account, a billing contact and SUBS_PER_ACCOUNT subscriptions each) and counts the SQL
statements of one quote and one order placement in an in-process app (test client). On the
largest database it then serves the gateway with gunicorn on loopback and drives it from this
process with a thread pool (one requests.Session per thread, bounded by count and by time):
(a) GET /healthz, the bare endpoint: no auth, no database;
(b) POST /subscriptions/{id}/quotes with a billing contact's token;
(c) POST /accounts/{id}/orders: unique Idempotency-Keys, one order per subscription so that
    none conflicts, applied by the in-process queue of the gunicorn workers.
Targets: quote >= 15% of bare throughput; >= 200 orders/s; SQL per quote independent of N.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
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
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402
from sqlalchemy import create_engine, event, func, select, text  # noqa: E402

HOST = "127.0.0.1"  # loopback only
AUDIENCE = "billing-gateway"
SUBS_PER_ACCOUNT = 20  # 20 licenses per account: far below the enterprise threshold (100)
QUOTE_BODY = {"licenses": 2}
TARGET_QUOTE_RATIO = 0.15
TARGET_ORDERS_PER_S = 200.0
WARM = 10
PRICES = {"lite": ("19.00", "190.00"), "standard": ("29.00", "290.00"), "business": ("49.00", "490.00")}
CATALOG = {"name": "Webinar", "plans": [
    {"code": code, "name": code.title(), "rank": rank, "prices": [
        {"currency": "USD", "billing_period": period, "unit_amount": amount}
        for period, amount in zip(("monthly", "annual"), PRICES[code], strict=True)]}
    for rank, code in enumerate(PRICES, start=1)]}


# -- set-up ----------------------------------------------------------------------------------
@dataclass
class Seeded:
    url: str
    instance: Path
    issuer_key: RSAKey
    issuer_url: str
    accounts: list[tuple[str, str]] = field(default_factory=list)  # (account_id, subject)
    subscriptions: dict[str, list[str]] = field(default_factory=dict)  # account_id -> ids

    def token(self, subject: str, ttl: int = 3600) -> str:
        from gateway.auth.signing import mint

        return mint(self.issuer_key, issuer=self.issuer_url, audience=AUDIENCE, subject=subject,
                    ttl=ttl, client_id="bench")


def admin_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def create_database(base_url: str, name: str) -> str:
    engine = create_engine(admin_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    from sqlalchemy.engine import make_url

    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


def drop_database(base_url: str, name: str) -> None:
    engine = create_engine(admin_url(base_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class HeldQueue:
    def __init__(self):
        self.jobs = []

    def ping(self):
        return True

    def enqueue(self, func, *args, **kwargs):
        self.jobs.append((func, args))


def make_app(url: str, instance: Path):
    """An in-process app whose jobs are only collected: the served gateway's orders must be
    carried out by its own workers, not relayed into this process."""
    from gateway import create_app

    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(instance), "REDIS_URL": None})
    real = app.extensions["gateway.queue"]
    if getattr(real, "relay", None) is not None:
        real.relay = None  # the in-process queue's idle outbox relay
    app.extensions["gateway.queue"] = HeldQueue()
    return app


def call(client, method, path, token=None, **kw):
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    r = client.open(path, method=method, headers=headers, **kw)
    if r.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.get_data(as_text=True)[:300]}")
    return r.get_json()


def seed(url: str, instance: Path, tenants: int) -> Seeded:
    from gateway.auth.signing import create_client
    from gateway.migrate import upgrade
    from tenants.models import Subscription

    upgrade(url)
    app = make_app(url, instance)
    key = RSAKey.generate_key(2048, parameters={"kid": "bench-1"})
    s = Seeded(url, instance, key, "https://idp.bench.example")
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
    subs = []
    for n in range(tenants):
        tenant = call(client, "POST", "/api/v1/tenants", admin, json={
            "name": f"Bench {n}", "slug": f"bench-{n}", "issuers": [issuer]})
        account = call(client, "POST", f"/api/v1/tenants/{tenant['id']}/accounts", admin, json={
            "name": f"Bench {n} Inc", "country": "US", "currency": "USD",
            "billing_channel": "online", "payment_terms": "card"})
        subject = f"billing-{n}@bench.example"
        call(client, "POST", f"/api/v1/accounts/{account['id']}/contacts", admin, json={
            "subject": subject, "name": f"Billing {n}", "email": subject,
            "roles": ["billing_contact"]})
        call(client, "PUT", f"/api/v1/accounts/{account['id']}/payment-method", admin, json={
            "token": f"pm_bench_{n}", "brand": "visa", "last4": "4242", "exp_month": 12,
            "exp_year": 2099})
        s.accounts.append((account["id"], subject))
        for _ in range(SUBS_PER_ACCOUNT):
            subs.append(Subscription(
                tenant_id=tenant["id"], account_id=account["id"], product="webinar",
                plan="standard", licenses=1, billing_period="monthly", status="active",
                current_period_start=start, current_period_end=start + timedelta(days=30)))
    db = sm()
    db.add_all(subs)
    db.commit()
    for sub in subs:
        s.subscriptions.setdefault(sub.account_id, []).append(sub.id)
    db.close()
    app.extensions["gateway.db"].dispose()
    return s


# -- SQL statements per request (in-process) --------------------------------------------------
def count_sql(seeded: Seeded) -> dict:
    """Statements one quote, one order placement and its apply job send, on a warm app."""
    from adapters.jobs import resolve

    app = make_app(seeded.url, seeded.instance)
    held = app.extensions["gateway.queue"]
    engine = app.extensions["gateway.db"].engine
    me = threading.get_ident()
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        if threading.get_ident() == me:
            statements.append(statement)

    client = app.test_client()
    out = {"quote": [], "order": [], "apply": []}
    picks = [0, len(seeded.accounts) // 2, len(seeded.accounts) - 1]
    for round_, n in enumerate(picks):
        account_id, subject = seeded.accounts[n]
        token = seeded.token(subject)
        sub_id = seeded.subscriptions[account_id].pop()
        statements.clear()
        call(client, "POST", f"/api/v1/subscriptions/{sub_id}/quotes", token, json=QUOTE_BODY)
        out["quote"].append(len(statements))
        statements.clear()
        call(client, "POST", f"/api/v1/accounts/{account_id}/orders", token,
             json={"items": [{"subscription_id": sub_id, **QUOTE_BODY}]},
             headers={"Idempotency-Key": f"count-{round_}"})
        out["order"].append(len(statements))
        statements.clear()
        for job, job_args in held.jobs:
            with app.app_context():
                resolve(job)(*job_args)
        held.jobs.clear()
        out["apply"].append(len(statements))
    app.extensions["gateway.db"].dispose()
    return {k: v[1:] for k, v in out.items()}  # the first round warms caches


def reserve(seeded: Seeded, count: int = 200) -> list[tuple[str, str, str]]:
    """(account, subject, subscription) kept out of the load for the profile."""
    picks = [seeded.accounts[k % len(seeded.accounts)] for k in range(count)]
    return [(a, subj, seeded.subscriptions[a].pop()) for a, subj in picks]


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
                     for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:14])


def send(client, kind: str, account_id: str, sub_id: str, token: str, key: str) -> None:
    """One in-process quote, or one order with its own idempotency key."""
    if kind == "quote":
        call(client, "POST", f"/api/v1/subscriptions/{sub_id}/quotes", token, json=QUOTE_BODY)
    else:
        call(client, "POST", f"/api/v1/accounts/{account_id}/orders", token,
             json={"items": [{"subscription_id": sub_id, **QUOTE_BODY}]},
             headers={"Idempotency-Key": key})


def timed(seeded: Seeded, work: list[tuple[str, str, str]]) -> str:
    """Wall time per in-process request, no profiler: the server's own cost of one request."""
    app = make_app(seeded.url, seeded.instance)
    client = app.test_client()
    token = {subj: seeded.token(subj) for _, subj, _ in work}
    lines = []
    for kind in ("quote", "order"):
        t0 = time.perf_counter()
        for n, (account_id, subject, sub_id) in enumerate(work):
            if n == WARM:  # the first requests fill SQLAlchemy's and psycopg's caches
                t0 = time.perf_counter()
            send(client, kind, account_id, sub_id, token[subject], f"timed-{n}")
        lines.append(f"  {kind}: {1000 * (time.perf_counter() - t0) / (len(work) - WARM):.2f} ms per "
                     f"request (in-process, one thread, {len(work) - WARM} requests after {WARM})")
    app.extensions["gateway.db"].dispose()
    return "\n".join(lines)


def profile(seeded: Seeded, work: list[tuple[str, str, str]]) -> str:
    """cProfile of in-process quotes and orders: where a request's time goes."""
    app = make_app(seeded.url, seeded.instance)
    client = app.test_client()
    token = {subj: seeded.token(subj) for _, subj, _ in work}
    report = []
    for kind in ("quote", "order"):
        prof = cProfile.Profile()
        prof.enable()
        for n, (account_id, subject, sub_id) in enumerate(work):
            send(client, kind, account_id, sub_id, token[subject], f"prof-{n}")
        prof.disable()
        stats = pstats.Stats(prof)
        buf = io.StringIO()
        stats.stream = buf
        stats.sort_stats("tottime").print_stats(25)
        report.append(f"== cProfile: {len(work)} in-process {kind}s; own time by package ==\n"
                      f"{by_package(stats)}\n{buf.getvalue()}")
    app.extensions["gateway.db"].dispose()
    return "\n".join(report)


# -- the served gateway and the load ---------------------------------------------------------
def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def serve(seeded: Seeded, workers: int, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=seeded.url, GATEWAY_INSTANCE_PATH=str(seeded.instance),
               PYTHONPATH=str(ROOT))
    env.pop("GATEWAY_REDIS_URL", None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen(
        [gunicorn, "-w", str(workers), "-k", "gthread", "--threads", str(threads),
         "-b", f"{HOST}:{port}", "--log-level", "warning", "gateway:create_app()"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return proc, base
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not come up; see {log}")
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _cpu_by_pid() -> dict[int, tuple[str, int, float]]:
    """pid -> (command, session id, CPU seconds) from /proc (Linux); {} elsewhere."""
    out, tick = {}, os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        out[int(entry.name)] = (comm, int(fields[3]), (int(fields[11]) + int(fields[12])) / tick)
    return out


class CpuMeter:
    """CPU seconds spent by this client process, the gunicorn session and PostgreSQL."""

    def __init__(self, server_session: int):
        self.server_session = server_session

    def snapshot(self) -> dict[str, dict[int, float]]:
        groups: dict[str, dict[int, float]] = {"client": {}, "gunicorn": {}, "postgres": {}}
        for pid, (comm, session, cpu) in _cpu_by_pid().items():
            if pid == os.getpid():
                groups["client"][pid] = cpu
            elif session == self.server_session:
                groups["gunicorn"][pid] = cpu
            elif comm.startswith("postgres"):
                groups["postgres"][pid] = cpu
        return groups

    @staticmethod
    def spent(before, after) -> dict[str, float]:
        return {g: sum(v - before[g].get(pid, 0.0) for pid, v in after[g].items()) for g in after}


@dataclass
class Result:
    name: str
    done: int
    errors: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def cpu_line(self) -> str:
        total = self.done + self.errors
        if not self.cpu or not total:
            return f"{self.name:<8} (no /proc: CPU not measured)"
        per = {k: 1000 * v / total for k, v in self.cpu.items()}
        busy = sum(self.cpu.values()) / self.seconds
        return (f"{self.name:<8} " + "  ".join(f"{k} {v:6.2f}" for k, v in per.items())
                + f"   (all: {sum(per.values()):.2f} ms; {busy:.2f} of {os.cpu_count()} CPUs busy)")

    def line(self) -> str:
        return (f"{self.name:<8} {self.done:>7} {self.errors:>6} {self.seconds:>7.2f} {self.rate:>9.1f} "
                f"{self.pct(50):>8.2f} {self.pct(99):>8.2f}  {dict(sorted(self.statuses.items()))}")


def drive(name: str, requests_: list, clients: int, seconds: float, meter: CpuMeter | None = None) -> Result:
    """Send the prepared requests (method, url, kwargs) from `clients` threads, each with its own
    Session, until all are sent or `seconds` have passed."""
    lock = threading.Lock()
    position = iter(range(len(requests_)))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    local = threading.local()
    before = meter.snapshot() if meter else None
    start = time.perf_counter()
    deadline = start + seconds

    def worker():
        local.session = requests.Session()
        mine, codes = [], {}
        while time.perf_counter() < deadline:
            with lock:
                i = next(position, None)
            if i is None:
                break
            method, url, kwargs = requests_[i]
            t0 = time.perf_counter()
            r = local.session.request(method, url, timeout=30, **kwargs)
            mine.append(time.perf_counter() - t0)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1
        local.session.close()
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(worker) for _ in range(clients)]:
            f.result()
    elapsed = time.perf_counter() - start
    cpu = CpuMeter.spent(before, meter.snapshot()) if meter else {}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return Result(name, ok, sum(statuses.values()) - ok, elapsed, latencies, statuses, cpu)


def load(seeded: Seeded, base: str, args, meter: CpuMeter) -> dict[str, Result]:
    tokens = {subj: seeded.token(subj) for _, subj in seeded.accounts}
    health = [("GET", f"{base}/healthz", {})] * args.max_requests
    quotes = []
    for n in range(args.max_requests):
        account_id, subject = seeded.accounts[n % len(seeded.accounts)]
        subs = seeded.subscriptions[account_id]
        quotes.append(("POST", f"{base}/api/v1/subscriptions/{subs[n % len(subs)]}/quotes",
                       {"json": QUOTE_BODY, "headers": {"Authorization": f"Bearer {tokens[subject]}"}}))
    # Orders: one per subscription, interleaved across accounts so that no two in flight share one.
    orders = []
    depth = max(len(v) for v in seeded.subscriptions.values())
    for j in range(depth):
        for account_id, subject in seeded.accounts:
            subs = seeded.subscriptions[account_id]
            if j < len(subs):
                orders.append(("POST", f"{base}/api/v1/accounts/{account_id}/orders", {
                    "json": {"items": [{"subscription_id": subs[j], **QUOTE_BODY}]},
                    "headers": {"Authorization": f"Bearer {tokens[subject]}",
                                "Idempotency-Key": uuid.uuid4().hex}}))
    orders = orders[:args.max_requests]
    warm = args.clients * 20
    drive("warm-up", health[:warm] + quotes[-warm:], args.clients, 10)
    results = {"healthz": drive("healthz", health, args.clients, args.seconds, meter),
               "quote": drive("quote", quotes, args.clients, args.seconds, meter),
               "order": drive("order", orders, args.clients, args.seconds, meter)}
    return results


def wait_applied(url: str, placed: int, timeout: float = 120) -> tuple[int, float]:
    from gateway.orders.models import Order

    engine = create_engine(url)
    t0 = time.perf_counter()
    try:
        while True:
            with engine.connect() as c:
                done = c.scalar(select(func.count()).select_from(Order)
                                .where(Order.status == "completed", ~Order.idempotency_key.like("count-%")))
            if done >= placed or time.perf_counter() - t0 > timeout:
                return done, time.perf_counter() - t0
            time.sleep(0.2)
    finally:
        engine.dispose()


# -- main ------------------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pg", default=os.environ.get("GATEWAY_BENCH_POSTGRES_URL")
                   or os.environ.get("GATEWAY_TEST_POSTGRES_URL")
                   or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                   help="any database URL on the server; fresh databases are created beside it")
    p.add_argument("--sizes", default="1,200", help="tenants per run (the load runs on the largest)")
    p.add_argument("--seconds", type=float, default=8.0, help="time bound per load phase")
    p.add_argument("--max-requests", type=int, default=4000, help="count bound per load phase")
    p.add_argument("--clients", type=int, default=16, help="client threads")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--profile", action="store_true", help="cProfile in-process quotes and orders")
    p.add_argument("--keep", action="store_true", help="keep the databases and the instance folder")
    args = p.parse_args()
    sizes = sorted(int(n) for n in args.sizes.split(","))
    work = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    created, ok = [], True
    print(f"bench: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, server and client on {HOST}; "
          f"load average {loadavg()} (other work on the machine skews the figures)")
    try:
        counts, seeded = {}, None
        for n in sizes:
            name = f"gw_bench_{secrets.token_hex(4)}_{n}"
            url = create_database(args.pg, name)
            created.append(name)
            t0 = time.perf_counter()
            seeded = seed(url, work / f"instance-{n}", n)
            print(f"seeded N={n}: {n} tenants/accounts, {n * SUBS_PER_ACCOUNT} subscriptions "
                  f"in {time.perf_counter() - t0:.1f}s (database {name})")
            counts[n] = count_sql(seeded)
        print("\nSQL statements per request (in-process, warm; one figure per sampled account):")
        for n, c in counts.items():
            print(f"  N={n:<5} quote {c['quote']}  order placement {c['order']}  apply job {c['apply']}")
        per_quote = {q for c in counts.values() for q in c["quote"]}
        constant = len(per_quote) == 1
        print(f"  SQL per quote constant across N: {constant} ({sorted(per_quote)})")

        kept = reserve(seeded, 300) if args.profile else []
        proc, base = serve(seeded, args.workers, args.threads, work / "gunicorn.log")
        try:
            results = load(seeded, base, args, CpuMeter(proc.pid))
            # the workers' in-process queues carry the orders out: wait before stopping them
            placed = results["order"].done
            applied, waited = wait_applied(seeded.url, placed, timeout=60)
        finally:
            stop(proc)
        print(f"\nload: gunicorn -w {args.workers} -k gthread --threads {args.threads}; "
              f"{args.clients} client threads; bounds {args.max_requests} requests / {args.seconds:g}s "
              f"per phase; N={sizes[-1]}")
        print(f"{'phase':<8} {'ok':>7} {'errors':>6} {'seconds':>7} {'req/s':>9} {'p50 ms':>8} "
              f"{'p99 ms':>8}  statuses")
        for r in results.values():
            print(r.line())
        print("\nCPU ms per request (this client, gunicorn workers, PostgreSQL; the order phase's "
              "gunicorn figure includes the queue applying orders):")
        for r in results.values():
            print(r.cpu_line())
        bare = results["healthz"].rate
        q_ratio = results["quote"].rate / bare if bare else 0.0
        o_ratio = results["order"].rate / bare if bare else 0.0
        print(f"\nquote/bare = {q_ratio:.3f} (target >= {TARGET_QUOTE_RATIO})")
        print(f"order/bare = {o_ratio:.3f}")
        print(f"orders/s   = {results['order'].rate:.1f} (target >= {TARGET_ORDERS_PER_S:g}); "
              f"{applied}/{placed} applied by the queue (waited {waited:.1f}s after the phase)")
        verdict = {"quote_ratio": q_ratio >= TARGET_QUOTE_RATIO,
                   "orders_per_s": results["order"].rate >= TARGET_ORDERS_PER_S,
                   "sql_per_quote_constant": constant}
        print("targets:", json.dumps(verdict))
        ok = all(verdict.values()) and all(r.errors == 0 for r in results.values())
        print(f"load average at the end: {loadavg()}")
        if args.profile:
            print()
            print("in-process cost of one request:")
            print(timed(seeded, kept[:150 + WARM]))
            print(profile(seeded, kept[150 + WARM:]))
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
