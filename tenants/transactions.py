"""How a unit of work ends when it may have only read: with COMMIT, not ROLLBACK.

psycopg forgets every prepared statement of a connection at each ROLLBACK (it cannot tell what
a rolled-back transaction undid), and counts uses again from zero. A read-only request or job
ended by a rollback (SQLAlchemy's `Session.close()` rolls back an open transaction) thus kept
the hot path's statements from ever being prepared: PostgreSQL parsed and planned every one of
them, 60% of its CPU per order. For a transaction that wrote nothing, COMMIT and ROLLBACK do
the same; a transaction that wrote anything is still rolled back.

A statement counts as a write unless it starts with SELECT (a `WITH` that inserts, an UPDATE,
anything unknown): a read taken for a write only costs the prepared statements, never the
other way round."""

from __future__ import annotations

import weakref

from sqlalchemy import event
from sqlalchemy.orm import Session

_WROTE = "tenants.transactions.wrote"  # on the connection, until its transaction ends
_CONNECTION = "tenants.transactions.connection"  # on the session, while its transaction lasts
_NOTED = weakref.WeakSet()  # engines whose writes are noted: only their reads are committed


def note_writes(engine) -> None:
    """Marks each connection of `engine` that runs anything but a SELECT in a transaction."""
    _NOTED.add(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn, _cursor, statement, _parameters, _context, _executemany):
        if not statement.startswith("SELECT"):
            conn.info[_WROTE] = True

    @event.listens_for(engine, "commit")
    def _committed(conn):
        conn.info.pop(_WROTE, None)

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn):
        conn.info.pop(_WROTE, None)


@event.listens_for(Session, "after_begin")
def _began(session, _transaction, connection) -> None:
    session.info[_CONNECTION] = connection


@event.listens_for(Session, "after_transaction_end")
def _ended(session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTION, None)


def only_read(session: Session) -> bool:
    """True if `session`'s transaction has run no write and holds no unflushed change."""
    connection = session.info.get(_CONNECTION)
    return (connection is not None and connection.engine in _NOTED
            and not connection.info.get(_WROTE)
            and not (session.new or session.dirty or session.deleted))


def finish(session: Session) -> None:
    """Ends `session`'s transaction, if any: COMMIT when it only read, else ROLLBACK."""
    if not session.in_transaction():
        return
    if only_read(session):
        session.commit()
    else:
        session.rollback()
