"""The Alembic migrations, on SQLite and PostgreSQL: from empty to head, back to base, and a
head schema that is exactly what the models describe; data migrations fill what they add."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool, text

from gateway.migrate import downgrade, upgrade
from gateway.schema import metadata


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """An empty database (not the migrated copy that conftest's db_url gives): these tests run
    the migrations themselves, from empty."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("empty_postgres_url")


@pytest.fixture
def engine(db_url):
    engine = create_engine(db_url, poolclass=pool.NullPool)
    yield engine
    engine.dispose()


def tables(engine) -> set[str]:
    with engine.connect() as c:
        return set(inspect(c).get_table_names())


def test_upgrade_from_empty_creates_every_table(db_url, engine):
    assert tables(engine) == set()
    upgrade(db_url)
    assert tables(engine) == set(metadata.tables) | {"alembic_version"}
    with engine.connect() as c:
        assert MigrationContext.configure(c).get_current_revision() is not None


def test_upgrade_twice_is_a_no_op(db_url, engine):
    upgrade(db_url)
    upgrade(db_url)
    assert tables(engine) == set(metadata.tables) | {"alembic_version"}


def test_downgrade_to_base_drops_every_table(db_url, engine):
    upgrade(db_url)
    downgrade(db_url, "base")
    assert tables(engine) == {"alembic_version"}
    with engine.connect() as c:
        assert MigrationContext.configure(c).get_current_revision() is None


def test_upgrade_after_downgrade(db_url, engine):
    upgrade(db_url)
    downgrade(db_url, "base")
    upgrade(db_url)
    assert tables(engine) == set(metadata.tables) | {"alembic_version"}


def test_migrated_schema_matches_the_models(db_url, engine):
    upgrade(db_url)
    with engine.connect() as c:
        context = MigrationContext.configure(c, opts={"compare_type": True, "target_metadata": metadata})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_migrated_indexes_and_constraints_match_the_models(db_url, engine):
    """compare_metadata's view, spelled out for what it compares loosely: unique constraints and
    indexes by name, foreign keys by target."""
    upgrade(db_url)
    with engine.connect() as c:
        found = inspect(c)
        for table in metadata.sorted_tables:
            want_fks = {(tuple(fk.parent.name for fk in con.elements), con.referred_table.name)
                        for con in table.foreign_key_constraints}
            got_fks = {(tuple(fk["constrained_columns"]), fk["referred_table"])
                       for fk in found.get_foreign_keys(table.name)}
            assert got_fks == want_fks, table.name
            want_idx = {i.name for i in table.indexes}
            got_idx = {i["name"] for i in found.get_indexes(table.name)
                       if not i.get("duplicates_constraint")}
            assert want_idx <= got_idx, table.name
            want_pk = [col.name for col in table.primary_key.columns]
            assert found.get_pk_constraint(table.name)["constrained_columns"] == want_pk, table.name


def test_0009_counts_the_licenses_of_existing_accounts(db_url, engine):
    """Data written before revision 0009: the column starts at the sum, not at zero."""
    upgrade(db_url, "0006")
    with engine.begin() as c:
        c.execute(text("INSERT INTO tenants (id, name, slug, require_vat_number, created_at) "
                       "VALUES ('ten_1', 'T', 't', false, '2026-01-01')"))
        c.execute(text("INSERT INTO accounts (id, tenant_id, name, country, currency, "
                       "billing_channel, payment_terms, credit_balance, vat_check_attempts, "
                       "created_at) VALUES ('acc_1', 'ten_1', 'A', 'US', 'USD', 'online', "
                       "'card', '0', 0, '2026-01-01')"))
        c.execute(text("INSERT INTO products (code, name) VALUES ('webinar', 'W')"))
        for n, (status, licenses) in enumerate((("active", 4), ("active", 3), ("expired", 50))):
            c.execute(text(
                "INSERT INTO subscriptions (id, tenant_id, account_id, product, plan, licenses, "
                "billing_period, status, current_period_start, current_period_end, version, "
                "created_at, updated_at) VALUES (:id, 'ten_1', 'acc_1', 'webinar', 'lite', :n, "
                "'monthly', :status, '2026-01-01', '2026-02-01', 1, '2026-01-01', '2026-01-01')"),
                {"id": f"sub_{n}", "n": licenses, "status": status})
    upgrade(db_url)
    with engine.connect() as c:
        assert c.execute(text("SELECT active_licenses FROM accounts WHERE id = 'acc_1'")).scalar() == 7
