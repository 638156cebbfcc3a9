"""The transactional outbox: rows written with the order, moved to the job queue by a relay.

A crash after the order commits but before the relay runs loses nothing (the row stays
undispatched and the next relay pass sends it); a crash after enqueueing but before marking
the row sends it twice, which is harmless because every job is idempotent by order.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session

from adapters import context
from adapters.models import OutboxMessage
from tenants.db import session_clock

log = logging.getLogger(__name__)


def add(db, job: str, *, dispatched_at=None, **fields) -> None:
    """`dispatched_at`: its writer runs the job itself once the transaction commits (the relay
    leaves the message; `release` gives it back)."""
    db.add(OutboxMessage(job=job, dispatched_at=dispatched_at, payload=payload(**fields)))


def payload(**fields) -> dict:
    """A message's payload: the job's arguments and options, and the request that caused it."""
    fields.setdefault("request_id", context.request_id.get())
    return fields


# -- has this process committed anything for the relay since its last pass? --------------------
# The sessionmaker's info carries one `threading.Event` (PENDING) per database: set when a
# transaction that wrote a message to send commits. A relay woken after a commit that wrote
# none (the apply job's, whose mail is sent by the job itself) skips its pass; its periodic
# pass runs whatever the flag says (another process's leftovers, a crash's).
PENDING = "outbox.pending"
_WRITTEN = "outbox.written"


def written(db) -> None:
    """The caller's transaction wrote a message to send, other than through the session's
    flush (a Core INSERT): the relay is to pass once it commits."""
    db.info[_WRITTEN] = True


@event.listens_for(Session, "after_flush")
def _written_by_flush(db, _flush_context) -> None:
    if any(isinstance(o, OutboxMessage) and o.dispatched_at is None for o in db.new):
        db.info[_WRITTEN] = True


@event.listens_for(Session, "after_commit")
def _pending_at_commit(db) -> None:
    if db.info.pop(_WRITTEN, False) and db.info.get(PENDING) is not None:
        db.info[PENDING].set()


@event.listens_for(Session, "after_rollback")
def _nothing_written(db) -> None:
    db.info.pop(_WRITTEN, None)


# A pass follows the previous one by at least this long: under load, the commits of that moment
# share one pass (one statement, one call to the queue, one batch job) instead of a pass each.
GATHER_SECONDS = 0.02


class Relayer:
    """For a queue in another process (RQ): a thread of this process relays the outbox when
    woken after a commit (and every `interval` seconds anyway), so requests do not wait on it.
    `on_commit=False`: the periodic pass alone, where the workers relay as soon as anything is
    committed (PostgreSQL: `relay_when_notified`), and this is the safety net."""

    def __init__(self, sessionmaker, queue, interval: float = 2.0, pending=None,
                 gather: float = GATHER_SECONDS, on_commit: bool = True):
        self.sessionmaker, self.queue, self.interval = sessionmaker, queue, interval
        self.gather, self.on_commit = gather, on_commit
        self.pending = pending  # PENDING of the sessionmaker's info, if it carries one
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
                self._thread.start()
        if self.on_commit:
            self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the thread (the app is being thrown away, e.g. at the end of a test)."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        passed = float("-inf")
        while not self._stopped.is_set():
            poked = self._wake.wait(self.interval)
            wait = passed + self.gather - time.monotonic()
            if poked and wait > 0 and self._stopped.wait(wait):
                return
            self._wake.clear()
            if self._stopped.is_set():
                return
            if self.pending is not None:
                if poked and not self.pending.is_set():
                    continue  # the commit that woke it wrote nothing to send
                self.pending.clear()
            try:
                _drain(self.sessionmaker, self.queue)
            except Exception:  # the database or Redis is down: the next pass tries again
                log.exception("outbox relay failed")
            passed = time.monotonic()


# -- PostgreSQL: the workers relay, woken by the commit ----------------------------------------
# The outbox's trigger (migration 0012) notifies this channel for each row written to be sent;
# PostgreSQL delivers a transaction's notifications when it commits. A worker listening to it
# relays within `GATHER_SECONDS` of any process's commit, and the processes that serve requests
# spend nothing on handing jobs over (they keep a periodic pass, in case no worker listens).
CHANNEL = "gateway_outbox"


def relay_when_notified(engine, sessionmaker, queue, stopped: threading.Event,
                        gather: float = GATHER_SECONDS, timeout: float = 1.0) -> None:
    """Relays whenever a transaction that wrote a message to send commits, until `stopped`.
    Runs in a thread of its own, on a connection of its own (LISTEN needs it held, outside any
    transaction); a lost connection is opened again a second later, and what was notified
    meanwhile goes with the first pass after it."""
    import psycopg  # PostgreSQL's driver: an optional dependency (the `postgres` extra)

    args, kwargs = engine.dialect.create_connect_args(engine.url)
    while not stopped.is_set():
        try:
            with psycopg.connect(*args, **kwargs, autocommit=True) as listening:
                listening.execute(f"LISTEN {CHANNEL}")
                _drain(sessionmaker, queue)  # what was written before this listened
                while not stopped.is_set():
                    if not _notified(listening, timeout):
                        continue
                    if stopped.wait(gather):  # the commits of that moment share one pass
                        return
                    _notified(listening, 0)  # those notified meanwhile: this pass sends them
                    _drain(sessionmaker, queue)
        except Exception:  # the database or Redis is down: the next pass tries again
            log.exception("outbox listener failed; listening again in a second")
            stopped.wait(1.0)


def _notified(listening, timeout: float) -> bool:
    """Whether a notification arrived within `timeout` (all those received are consumed)."""
    return sum(1 for _ in listening.notifies(timeout=timeout, stop_after=1)) > 0


def _drain(sessionmaker, queue) -> None:
    while relay(sessionmaker, queue) >= 100:
        pass


def relay(sessionmaker, queue, limit: int = 100) -> int:
    """Enqueue undispatched messages; returns how many were sent."""
    db = sessionmaker()
    try:
        # Marked and read in one statement, the marks committed only once the queue has the
        # jobs. SKIP LOCKED (PostgreSQL): relays in several processes share the rows out
        # instead of sending the same ones; a row sent twice after a crash is still harmless.
        rows = sorted(db.execute(_TAKE, {"now": session_clock(db).now(), "limit": limit}).all())
        calls, job_ids = [], set()
        for _id, job, payload in rows:
            job_id = payload.get("job_id")
            if job_id is not None and job_id in job_ids:
                continue  # the same job twice (a resend beside the first): once is the job
            job_ids.add(job_id)
            calls.append((job, payload.get("args", ()), {
                "job_id": job_id, "on_failure": payload.get("on_failure"),
                "request_id": payload.get("request_id")}))
        if calls:
            try:
                queue.enqueue_many(calls)  # one round trip to Redis for the batch, all or none
            except Exception:  # the queue is down: keep the rows for the next pass
                log.warning("outbox relay: queue unavailable, %d message(s) kept", len(rows))
                db.rollback()
                return 0
        db.commit()
    finally:
        db.close()
    return len(rows)


_table = OutboxMessage.__table__
_TAKE = (update(_table).values(dispatched_at=bindparam("now"))
         .where(_table.c.id.in_(select(_table.c.id).where(_table.c.dispatched_at.is_(None))
                                .order_by(_table.c.id).limit(bindparam("limit"))
                                .with_for_update(skip_locked=True).scalar_subquery()))
         .returning(_table.c.id, _table.c.job, _table.c.payload))


def release(db, job: str, job_id: str) -> None:
    """A message written as dispatched, for its writer to run itself, that the writer could
    not run: the relay sends it after all."""
    db.execute(update(_table).where(_table.c.job == job,
                                    _table.c.payload["job_id"].as_string() == job_id)
               .values(dispatched_at=None))
    db.commit()
