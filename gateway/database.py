"""Engine and request-scoped sessions; SQLite tuned for a gateway with a worker thread."""

from __future__ import annotations

import threading

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
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    transactions.note_writes(engine)  # read-only units of work end with COMMIT (see there)
    return engine


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
