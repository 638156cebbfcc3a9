"""`tenants.db.in_list`: the rows whose column is in a list bound at execution, on both
databases (PostgreSQL binds one array, SQLite an expanding IN)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select

from tenants.db import in_list
from tenants.models import Tenant


@pytest.mark.parametrize("ids, found", [(["t1", "t3"], ["t1", "t3"]), (["t2"], ["t2"]),
                                        ([], []), (["nope"], [])])
def test_in_list_selects_the_listed_rows(db_url, ids, found):
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(Tenant.__table__.insert(), [
                {"id": t, "name": t, "slug": t} for t in ("t1", "t2", "t3")])
            statement = select(Tenant.id).where(in_list(Tenant.id, "ids")).order_by(Tenant.id)
            assert conn.execute(statement, {"ids": ids}).scalars().all() == found
            conn.rollback()
    finally:
        engine.dispose()


def test_in_list_binds_one_array_on_postgresql_and_expands_elsewhere():
    from sqlalchemy.dialects import postgresql, sqlite

    statement = select(Tenant.id).where(in_list(Tenant.id, "ids"))
    assert "= ANY (%(ids)s" in str(statement.compile(dialect=postgresql.psycopg.dialect()))
    lite = str(statement.compile(dialect=sqlite.dialect()))
    assert "IN (__[POSTCOMPILE_ids])" in lite and "= 1" not in lite
