"""A pooled PostgreSQL connection is pinged before use only after sitting idle (not at every
checkout); one that died while idle is replaced without the caller seeing an error."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from gateway.database import make_engine, ping_when_idle


@pytest.fixture
def engine(postgres_url):
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle=0.2)
    pings = []
    real = engine.dialect.do_ping

    def counted(dbapi_connection):
        pings.append(1)
        return real(dbapi_connection)

    engine.dialect.do_ping = counted
    engine.pings = pings
    yield engine
    engine.dispose()


def _backend(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("select pg_backend_pid()")).scalar_one()


def _terminate(postgres_url, pid: int) -> None:
    other = create_engine(postgres_url)
    try:
        with other.connect() as c:
            assert c.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        other.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(engine):
    first = _backend(engine)
    for _ in range(5):
        assert _backend(engine) == first
    assert engine.pings == []


def test_a_connection_idle_for_longer_is_pinged_first(engine):
    first = _backend(engine)
    time.sleep(0.3)
    assert _backend(engine) == first
    assert engine.pings == [1]


def test_a_connection_that_died_while_idle_is_replaced_unseen(engine, postgres_url):
    first = _backend(engine)
    _terminate(postgres_url, first)
    time.sleep(0.3)
    assert _backend(engine) != first  # no error: the ping failed and the pool reconnected
    assert engine.pings == [1]


def test_the_gateway_engine_replaces_a_connection_that_died_while_idle(postgres_url):
    from gateway.database import PING_AFTER_IDLE_SECONDS

    engine = make_engine(postgres_url)
    try:
        first = _backend(engine)
        _terminate(postgres_url, first)
        time.sleep(PING_AFTER_IDLE_SECONDS + 0.2)
        assert _backend(engine) != first
    finally:
        engine.dispose()
