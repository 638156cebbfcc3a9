"""Engine and request-scoped sessions; SQLite tuned for a gateway with a worker thread."""

from __future__ import annotations

import threading
import time

from flask import current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import tenants.active_licenses  # noqa: F401  (its flush hook keeps accounts' license counts)
from adapters import outbox
from tenants import transactions
from tenants.clock import SYSTEM, Clock


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # pysqlite's own BEGIN handling defers the write lock; take it at BEGIN so two
        # writers serialise instead of failing with "database is locked" on upgrade.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    ping_when_idle(engine)
    transactions.note_writes(engine)  # read-only units of work end with COMMIT (see there)
    return engine


# A pooled connection idle for longer than this is pinged before use. SQLAlchemy's pre-ping
# pings at every checkout: under load that was one round trip of four per quote, for
# connections used a few milliseconds before. One that fails its ping is replaced, and the
# pool's older connections with it (as pre-ping does); one that died within the second fails
# its first statement instead: the request answers 503 (retryable), a job is retried, and
# SQLAlchemy invalidates the pool's older connections.
PING_AFTER_IDLE_SECONDS = 1.0


def ping_when_idle(engine: Engine, idle: float = PING_AFTER_IDLE_SECONDS) -> None:
    """SQLAlchemy's pre-ping, for connections that sat in the pool more than `idle` seconds
    (the pool's `checkout` event: a DisconnectionError makes it take another connection; an
    InvalidatePoolError, as SQLAlchemy's own failed pre-ping raises, the older ones too)."""
    from sqlalchemy import exc

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record):
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):
        since = record.info.get("idle_from")
        if since is None or time.monotonic() - since <= idle:
            return  # new, or used a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            if not engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            raise exc.InvalidatePoolError("ping failed: the database went away")


class Database:
    def __init__(self, url: str, clock: Clock = SYSTEM, cache=None):
        self.url = url
        self.engine = make_engine(url)
        # The clock rides with every session: ORM timestamps come from it (tenants.db.stamped).
        # Set when a transaction that wrote outbox messages commits (adapters.outbox).
        self.outbox_pending = threading.Event()
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False,
                                         info={"clock": clock, "cache": cache,
                                               outbox.PENDING: self.outbox_pending})

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()


def database() -> Database:
    return current_app.extensions["gateway.db"]


def session() -> Session:
    """The request's (or job's) session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = database().sessionmaker()
    return g.db_session


def close_session(_exc=None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        try:
            if _exc is None and transactions.only_read(s):
                s.commit()  # not the rollback of close(): see tenants.transactions
            # (Otherwise close() alone: an explicit rollback() would expire the objects loaded
            # here, which per-process caches may hold, where close() keeps their state.)
        finally:
            s.close()
