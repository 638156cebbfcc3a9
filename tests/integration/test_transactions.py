"""`tenants.transactions`: a unit of work that only read ends with COMMIT, so that psycopg keeps
the connection's prepared statements (a ROLLBACK makes it forget them all); one that wrote
anything is rolled back, as before."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import sessionmaker

from gateway.database import make_engine
from tenants import transactions
from tenants.models import Tenant


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    make = sessionmaker(engine, expire_on_commit=False)
    yield make
    engine.dispose()


def _count(make) -> int:
    db = make()
    try:
        return db.scalar(select(func.count()).select_from(Tenant))
    finally:
        db.close()


def _written(db):
    db.connection().execute(Tenant.__table__.insert(), {"id": "t-w", "name": "w", "slug": "w"})


def _unflushed(db):
    db.scalar(select(func.count()).select_from(Tenant))
    db.add(Tenant(id="t-p", name="p", slug="p"))


@pytest.mark.parametrize("change", [_written, _unflushed])
def test_a_transaction_that_changed_anything_is_rolled_back(sessions, change):
    before = _count(sessions)
    db = sessions()
    change(db)
    assert not transactions.only_read(db)
    transactions.finish(db)
    db.close()
    assert _count(sessions) == before


def test_reads_end_with_commit_and_keep_prepared_statements_on_postgresql(postgres_url):
    engine = make_engine(postgres_url)
    engine.pool._pool.maxsize = 1  # one connection: every session below runs on it
    make = sessionmaker(engine)
    query = select(Tenant.id).where(Tenant.slug == "nobody")
    try:
        for _ in range(8):  # psycopg prepares a statement at its fifth use
            db = make()
            db.execute(query).all()
            assert transactions.only_read(db)
            transactions.finish(db)
            assert not db.in_transaction()
            db.close()
        db = make()
        prepared = db.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
        db.close()
        assert any("nobody" in s or "tenants.slug" in s for s in prepared), prepared
    finally:
        engine.dispose()


def test_sqlite_sessions_are_rolled_back_as_before(sqlite_url):
    engine = make_engine(sqlite_url)
    db = sessionmaker(engine)()
    try:
        db.execute(select(Tenant.id)).all()
        assert not transactions.only_read(db)  # writes are not tracked there: never committed
    finally:
        db.close()
        engine.dispose()
