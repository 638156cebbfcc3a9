"""The outbox relay hands a batch of messages to the queue in one call, all or none: a queue
that is down keeps every row for the next pass, and one job written twice is sent once."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import insert, select, update

from adapters import outbox
from adapters.models import OutboxMessage
from gateway.database import Database
from gateway.migrate import upgrade
from tenants.db import utcnow
from tests.integration.conftest import wait_until_listening


class Recording:
    def __init__(self, down: bool = False):
        self.down = down
        self.batches: list[list] = []

    def enqueue_many(self, calls):
        if self.down:
            raise ConnectionError("Redis is down")
        self.batches.append([(job, tuple(args), options["job_id"]) for job, args, options in calls])


@pytest.fixture
def database(db_url):
    upgrade(db_url)
    db = Database(db_url)
    yield db
    db.dispose()


def _write(database, *messages):
    s = database.sessionmaker()
    for job, args, job_id in messages:
        outbox.add(s, job, args=list(args), job_id=job_id)
    s.commit()
    s.close()


def _undispatched(database) -> int:
    s = database.sessionmaker()
    try:
        return len(s.scalars(select(OutboxMessage).where(OutboxMessage.dispatched_at.is_(None))).all())
    finally:
        s.close()


def test_a_batch_goes_in_one_call_and_a_repeated_job_once(database):
    _write(database, ("a.process", ["o1"], "order-o1"), ("a.notify", ["o1"], None),
           ("a.process", ["o1"], "order-o1"), ("a.notify", ["o2"], None))
    queue = Recording()
    assert outbox.relay(database.sessionmaker, queue) == 4
    assert queue.batches == [[("a.process", ("o1",), "order-o1"), ("a.notify", ("o1",), None),
                              ("a.notify", ("o2",), None)]]
    assert _undispatched(database) == 0
    assert outbox.relay(database.sessionmaker, queue) == 0 and len(queue.batches) == 1


def test_a_queue_that_is_down_keeps_the_whole_batch(database):
    _write(database, ("a.process", ["o1"], "order-o1"), ("a.notify", ["o1"], None))
    assert outbox.relay(database.sessionmaker, Recording(down=True)) == 0
    assert _undispatched(database) == 2
    queue = Recording()
    assert outbox.relay(database.sessionmaker, queue) == 2
    assert [len(b) for b in queue.batches] == [2]


def _sent_within(queue, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if queue.batches:
            return True
        time.sleep(0.02)
    return False


def test_a_commit_that_wrote_messages_wakes_the_relay_and_one_that_wrote_none_does_not(database):
    """The relay passes at once after a commit that wrote a message to send; woken after one that
    wrote none, it waits for its periodic pass (which sends whatever is there)."""
    queue = Recording()
    relayer = outbox.Relayer(database.sessionmaker, queue, interval=1.5,
                             pending=database.outbox_pending)
    try:
        _write(database, ("a.process", ["o1"], "order-o1"))  # through the session
        relayer.poke()
        assert _sent_within(queue, 1.0)
        queue.batches.clear()
        s = database.sessionmaker()  # a row the process did not flag (as another process's)
        s.execute(insert(OutboxMessage).values(job="a.notify", payload={"args": ["o2"]},
                                               created_at=utcnow()))
        s.commit()
        s.close()
        relayer.poke()
        assert not _sent_within(queue, 0.5)
        assert _sent_within(queue, 3.0)  # the periodic pass
        assert queue.batches == [[("a.notify", ("o2",), None)]]
    finally:
        relayer.stop()


def test_a_statement_that_wrote_messages_flags_them_and_a_rollback_forgets(database):
    s = database.sessionmaker()
    try:
        outbox.written(s)
        s.rollback()
        assert not database.outbox_pending.is_set()
        outbox.written(s)
        s.commit()
        assert database.outbox_pending.is_set()
    finally:
        s.close()


def test_commits_close_together_share_one_pass(database):
    """A pass follows the previous one by at least `gather`: what commits meanwhile goes in one
    batch (one statement, one call to the queue), not a pass each."""
    queue = Recording()
    relayer = outbox.Relayer(database.sessionmaker, queue, interval=30,
                             pending=database.outbox_pending, gather=1.0)
    try:
        _write(database, ("a.process", ["o1"], "order-o1"))
        relayer.poke()
        assert _sent_within(queue, 1.0)  # the first pass does not wait
        for n in (2, 3):
            _write(database, ("a.process", [f"o{n}"], f"order-o{n}"))
            relayer.poke()
        deadline = time.monotonic() + 3
        while len(queue.batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [[job_id for _, _, job_id in b] for b in queue.batches] == [
            ["order-o1"], ["order-o2", "order-o3"]]
    finally:
        relayer.stop()


# -- PostgreSQL: the workers relay, woken by the commit ------------------------------------------
@pytest.fixture
def pg_database(postgres_url):
    db = Database(postgres_url)
    yield db
    db.dispose()


@pytest.fixture
def listener(pg_database):
    queue, stopped = Recording(), threading.Event()
    thread = threading.Thread(target=outbox.relay_when_notified, daemon=True, args=(
        pg_database.engine, pg_database.sessionmaker, queue, stopped), kwargs={"gather": 0.05})
    thread.start()
    wait_until_listening(pg_database.engine)
    yield queue
    stopped.set()
    thread.join(5)


def test_a_listening_worker_relays_any_process_s_commit_at_once(pg_database, listener):
    """No poke, no periodic pass: the commit itself (the outbox's trigger) wakes the listener."""
    _write(pg_database, ("a.process", ["o1"], "order-o1"))
    assert _sent_within(listener, 1.0)
    assert listener.batches == [[("a.process", ("o1",), "order-o1")]]
    listener.batches.clear()
    s = pg_database.sessionmaker()  # a message given back to the relay (outbox.release)
    s.execute(update(OutboxMessage).values(dispatched_at=None))
    s.commit()
    s.close()
    assert _sent_within(listener, 1.0)


def test_only_a_message_to_send_notifies_and_only_once_committed(pg_database):
    with psycopg.connect(pg_database.url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as listening:
        listening.execute(f"LISTEN {outbox.CHANNEL}")
        s = pg_database.sessionmaker()
        outbox.add(s, "a.notify", dispatched_at=utcnow(), args=["o1"])  # its writer sends it
        s.commit()
        assert list(listening.notifies(timeout=0.3)) == []
        outbox.add(s, "a.process", args=["o2"])
        s.flush()
        assert list(listening.notifies(timeout=0.3)) == []  # not before the commit
        s.commit()
        s.close()
        assert [n.channel for n in listening.notifies(timeout=1.0, stop_after=1)] == [outbox.CHANNEL]


def test_a_relayer_not_woken_by_commits_still_passes_periodically(database):
    """The processes that serve requests, on PostgreSQL with RQ: the safety net alone."""
    queue = Recording()
    relayer = outbox.Relayer(database.sessionmaker, queue, interval=1.0,
                             pending=database.outbox_pending, on_commit=False)
    try:
        relayer.poke()
        time.sleep(0.1)  # its first, empty, pass
        _write(database, ("a.process", ["o1"], "order-o1"))
        relayer.poke()
        assert not _sent_within(queue, 0.5)
        assert _sent_within(queue, 2.0)
    finally:
        relayer.stop()
