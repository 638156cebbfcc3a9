"""Calls handed to RQ together go as one batch job, run by a real RQ worker on Redis: each call
as its own job would run; a call that fails goes on alone with the retries it has left, and one
that cannot heal goes to its failure handler at once. A call alone keeps its own job."""

from __future__ import annotations

import uuid

import pytest

from adapters import jobs, worker
from adapters.errors import PermanentAdapterError, TransientAdapterError
from tests.conftest import build_app

HERE = __name__
RAN: list[tuple[str, str]] = []  # (what, argument): the worker runs in this process


def record(name: str) -> None:
    RAN.append(("ran", name))


def fail_on(name: str) -> None:
    if name.startswith("transient"):
        raise TransientAdapterError("the far side is down", system="test")
    if name.startswith("permanent"):
        raise PermanentAdapterError("the far side said no", system="test")
    RAN.append(("ran", name))


def handed_over(name: str) -> None:
    RAN.append(("failed", name))


@pytest.fixture
def queue(sqlite_url, tmp_path, redis_server_url):
    app = build_app(sqlite_url, tmp_path, REDIS_URL=redis_server_url,
                    QUEUE_NAME=f"batch-{uuid.uuid4().hex[:8]}", JOB_RETRIES=3, JOB_BACKOFF=[30, 60])
    q = app.extensions["gateway.queue"]
    jobs.set_worker_app(app)
    RAN.clear()
    yield q
    jobs.set_worker_app(None)
    for key in q.connection.scan_iter(f"rq:*{q.queue.name}*"):
        q.connection.delete(key)
    q.connection.close()


def _calls(func: str, *names: str, on_failure: str | None = None):
    return [(f"{HERE}.{func}", [name], {"job_id": f"job-{name}", "on_failure": on_failure,
                                        "request_id": None}) for name in names]


def _work(q) -> None:
    worker.worker_class()([q.queue], connection=q.connection).work(burst=True)


def test_calls_sent_together_run_as_one_job_in_their_order(queue):
    queue.enqueue_many(_calls("record", "a", "b", "c") + _calls("fail_on", "d"))
    assert queue.queue.count == 2  # one batch of `record`, and `fail_on` alone
    _work(queue)
    assert RAN == [("ran", "a"), ("ran", "b"), ("ran", "c"), ("ran", "d")]


def test_a_call_alone_is_its_own_job_under_its_id(queue):
    from rq.job import Job

    queue.enqueue_many(_calls("record", "a"))
    assert queue.queue.get_job_ids() == ["job-a"]
    assert Job.fetch("job-a", connection=queue.connection).retries_left == 3


def test_a_batch_holds_at_most_the_limit(queue):
    names = [f"n{i}" for i in range(2 * jobs.BATCH_LIMIT + 1)]
    queue.enqueue_many(_calls("record", *names))
    assert queue.queue.count == 3
    _work(queue)
    assert RAN == [("ran", n) for n in names]


def test_a_failed_call_goes_on_alone_with_the_retries_it_has_left(queue):
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    queue.enqueue_many(_calls("fail_on", "a", "transient-b", "c", on_failure=f"{HERE}.handed_over"))
    _work(queue)
    assert RAN == [("ran", "a"), ("ran", "c")]  # the others went on; nobody handed over yet
    retry = Job.fetch("job-transient-b", connection=queue.connection)
    assert retry.args[0] == f"{HERE}.fail_on" and list(retry.args[1:]) == ["transient-b"]
    assert retry.retries_left == 2 and retry.retry_intervals == [60]  # its first attempt is spent
    assert retry.meta["on_failure"] == f"{HERE}.handed_over"
    scheduled = ScheduledJobRegistry(queue=queue.queue)
    assert scheduled.get_job_ids() == ["job-transient-b"]
    due = scheduled.get_scheduled_time(retry)
    assert 25 < (due - retry.created_at).total_seconds() < 35  # after the first wait (30 s)


def test_a_call_that_cannot_heal_goes_to_its_handler_at_once(queue):
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    queue.enqueue_many(_calls("fail_on", "a", "permanent-b", "c", on_failure=f"{HERE}.handed_over"))
    _work(queue)
    assert RAN == [("ran", "a"), ("failed", "permanent-b"), ("ran", "c")]
    assert ScheduledJobRegistry(queue=queue.queue).count == 0
    assert FailedJobRegistry(queue=queue.queue).count == 0  # the batch itself did not fail
