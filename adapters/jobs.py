"""The job queue: RQ on Redis when configured, else an in-process worker thread.

Both run the same job functions (named by import path) with the same retry schedule; a job
that exhausts its retries calls its failure handler once.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence

from adapters import context

log = logging.getLogger(__name__)

QUEUE_NAME = "gateway"
_RELAY = ("relay",)  # a queue entry: run the outbox relay
BACKOFF = (1, 2, 5, 10, 30, 60)


def resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def backoff(retries: int) -> list[int]:
    return [BACKOFF[min(i, len(BACKOFF) - 1)] for i in range(retries)]


def _retryable() -> bool:
    """A permanent adapter error (a 4xx) will not heal by waiting: hand over at once."""
    import sys

    exc = sys.exc_info()[1]
    return getattr(exc, "retryable", True)


class InProcessQueue:
    """A daemon thread that runs jobs inside the app context, retrying with backoff."""

    def __init__(self, app, retries: int, scale: float = 1.0, relay=None, tick_seconds: float = 2.0):
        self.app = app
        self.tick_seconds = tick_seconds
        self.relay = relay  # the periodic pass (outbox relay, ...), run when idle, in app context
        self.retries = retries
        self.scale = scale  # tests shrink the backoff
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._stopped = False
        self.relay_outbox = None  # set by the app: moves committed outbox rows to this queue
        self._relay_asked = False

    def ping(self) -> bool:
        return True

    def depth(self) -> int:
        """Jobs enqueued and not yet finished (metrics)."""
        return self._pending

    def enqueue(self, func: str, *args, job_id: str | None = None,
                on_failure: str | None = None, request_id: str | None = None) -> None:
        with self._lock:
            self._pending += 1
        self._start()
        self._jobs.put((func, args, on_failure, 0, request_id))

    def enqueue_many(self, calls) -> None:
        """(func, args, options) each, as `enqueue` takes them."""
        for func, args, options in calls:
            self.enqueue(func, *args, **options)

    def poke(self) -> None:
        """A transaction committed outbox rows: relay them from the worker thread, soon (the
        request does not pay for it) and counted as pending, so `wait_idle` waits for them."""
        with self._lock:
            if self._relay_asked:
                return
            self._relay_asked = True
            self._pending += 1
        self._start()
        self._jobs.put(_RELAY)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="gateway-jobs", daemon=True)
                self._thread.start()

    def start(self) -> None:
        if not self._stopped:
            self._start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the worker thread after the job in hand, and waits for it (tests; a process
        that shuts down): a job must not outlive the app, nor its database."""
        self._stopped = True
        self._jobs.put(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                entry = self._jobs.get(timeout=self.tick_seconds)
            except queue.Empty:
                self._relay()
                continue
            if entry is None:
                return
            if entry is _RELAY:
                with self._lock:
                    self._relay_asked = False
                self._run_relay()
                self._done()
                continue
            func, args, on_failure, attempt, request_id = entry
            context.request_id.set(request_id)  # this thread's log lines name the request
            try:
                with self.app.app_context():
                    resolve(func)(*args)
            except Exception:
                log.exception("job %s%r failed (attempt %d)", func, args, attempt + 1)
                if attempt < self.retries and _retryable():
                    delay = backoff(self.retries)[attempt] * self.scale
                    threading.Timer(delay, self._jobs.put,
                                    ((func, args, on_failure, attempt + 1, request_id),)).start()
                    continue
                if on_failure:
                    try:
                        with self.app.app_context():
                            resolve(on_failure)(*args)
                    except Exception:
                        log.exception("failure handler %s failed", on_failure)
            self._done()

    def _run_relay(self) -> None:
        context.request_id.set(None)
        if self.relay_outbox is None:
            return
        try:
            with self.app.app_context():
                self.relay_outbox()
        except Exception:  # the periodic pass picks the rows up later
            log.exception("outbox relay failed")

    def _relay(self) -> None:
        context.request_id.set(None)  # the periodic pass descends from no request
        if self.relay is None:
            return
        try:
            with self.app.app_context():
                self.relay()
        except Exception:  # the database may be busy or not migrated yet; next tick
            log.exception("periodic pass failed")

    def _done(self) -> None:
        with self._lock:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Tests and the CLI: block until every enqueued job has finished or given up."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


# Calls of one function sent together go to RQ as one job of at most this many: RQ's own work per
# job (its registries, states, result and heartbeats: about ten Redis round trips) cost the worker
# as much CPU as applying an order. Kept small so that several workers still share a burst.
BATCH_LIMIT = 10


class RQQueue:
    def __init__(self, redis_url: str, retries: int, intervals: Sequence[int] | None = None,
                 name: str = QUEUE_NAME, batch_limit: int = BATCH_LIMIT):
        from redis import Redis
        from rq import Queue

        self.connection = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.queue = Queue(name, connection=self.connection)
        self.retries = retries
        self.intervals = list(intervals) if intervals is not None else backoff(retries)
        self.batch_limit = batch_limit

    def ping(self) -> bool:
        return bool(self.connection.ping())

    def depth(self) -> int:
        """Jobs waiting in the queue and scheduled for a retry (metrics)."""
        return self.queue.count + self.queue.scheduled_job_registry.count

    def enqueue(self, func: str, *args, job_id: str | None = None,
                on_failure: str | None = None, request_id: str | None = None) -> None:
        self.enqueue_many([(func, args, {"job_id": job_id, "on_failure": on_failure,
                                         "request_id": request_id})])

    def enqueue_many(self, calls: Sequence[tuple[str, Sequence, dict]]) -> None:
        """(func, args, options) each, as `enqueue` takes them: in one Redis transaction (RQ's
        pipeline), all or none. Calls of the same function (and failure handler) go as one
        batch job (`run_batch_in_app`); a call alone goes as its own job, named by its job_id."""
        datas = []
        for (func, on_failure), group in _grouped(calls, self.batch_limit):
            if len(group) == 1:
                _, args, options = group[0]
                datas.append(self._data(run_in_app, (func, *args), options.get("job_id"),
                                        on_failure, {"request_id": options.get("request_id")}))
            else:
                batch = [[o.get("job_id"), list(args), o.get("request_id")] for _, args, o in group]
                # As long as its calls would have had, one after the other.
                datas.append(self._data(run_batch_in_app, (func, batch), None, on_failure, {},
                                        callback=rq_batch_failure,
                                        timeout=self.queue.DEFAULT_TIMEOUT * len(group)))
        with self.connection.pipeline() as pipe:
            self.queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()

    def retry_later(self, func: str, args: Sequence, job_id: str | None, on_failure: str | None,
                    request_id: str | None) -> None:
        """A call of a batch failed (its first attempt): it goes on as its own job, with the
        retries and waits it would have had left after a first attempt of its own."""
        from datetime import timedelta

        rest = self.intervals[1:] or self.intervals
        self.queue.enqueue_in(
            timedelta(seconds=self.intervals[0]), run_in_app, func, *args, job_id=job_id,
            **_options(on_failure, {"request_id": request_id}, self.retries - 1, rest))

    def _data(self, job, args, job_id, on_failure, meta, callback=None, timeout=None):
        return self.queue.prepare_data(
            job, args, job_id=job_id, timeout=timeout,
            **_options(on_failure, meta, self.retries, self.intervals, callback))


def _options(on_failure, meta, retries, intervals, callback=None) -> dict:
    """A job's failure handling: its retries, the handler called after the last, its meta."""
    from rq import Callback, Retry

    return {"on_failure": Callback(callback or rq_failure, timeout=60) if on_failure else None,
            "retry": Retry(max=retries, interval=intervals) if retries > 0 else None,
            "failure_ttl": FAILURE_TTL, "meta": {"on_failure": on_failure, **meta}}


FAILURE_TTL = 30 * 24 * 3600


def _grouped(calls, limit: int):
    """((func, on_failure), [call, ...]) in the order first seen, each group at most `limit`."""
    groups: dict[tuple, list] = {}
    for call in calls:
        groups.setdefault((call[0], call[2].get("on_failure")), []).append(call)
    for key, group in groups.items():
        for start in range(0, len(group), limit):
            yield key, group[start:start + limit]


def rq_failure(job, connection, type, value, traceback):
    # RQ calls on_failure after every failed attempt; only the last one hands the job over.
    if job.retries_left:
        return
    handler = job.meta.get("on_failure")
    if handler:
        run_in_app(handler, *job.args[1:])


def rq_batch_failure(job, connection, type, value, traceback):
    """A batch job that failed as a whole (not one of its calls: those go on alone) for the last
    time: each call is handed over, as its own job's would be. Handlers leave alone what their
    call finished meanwhile (a completed order is not failed)."""
    if job.retries_left:
        return
    handler = job.meta.get("on_failure")
    if handler:
        for _job_id, args, _request_id in job.args[1]:
            run_in_app(handler, *args)


_worker_app = None


def set_worker_app(app) -> None:
    global _worker_app
    _worker_app = app


def _app():
    app = _worker_app
    if app is None:
        # A worker started without `flask worker` builds the app named by configuration, so
        # this module never imports the gateway that uses it.
        factory = os.environ.get("GATEWAY_APP_FACTORY", "gateway.create_app")
        app = resolve(factory)()
        set_worker_app(app)
    return app


def run_in_app(func: str, *args):
    """What an RQ worker runs: the job inside the gateway's app context."""
    from rq import get_current_job

    app = _app()
    current = get_current_job()
    context.request_id.set(current.meta.get("request_id") if current is not None else None)
    try:
        with app.app_context():
            return resolve(func)(*args)
    except Exception as exc:
        if not getattr(exc, "retryable", True) and current is not None:
            current.retries_left = 0  # a permanent error will not heal by waiting
        raise


def run_batch_in_app(func: str, batch: Sequence) -> None:
    """What an RQ worker runs for a batch job: each call as its own job would run it, one after
    the other. A call that fails does not fail the others: it goes on as its own job with the
    retries it has left (`RQQueue.retry_later`), or, when it cannot heal by waiting or has none
    left, to its failure handler at once."""
    from rq import get_current_job

    app = _app()
    current = get_current_job()
    on_failure = current.meta.get("on_failure") if current is not None else None
    queue = app.extensions["gateway.queue"]
    for job_id, args, request_id in batch:
        context.request_id.set(request_id)
        try:
            with app.app_context():
                resolve(func)(*args)
        except Exception as exc:
            log.warning("job %s%r failed (attempt 1, in a batch)", func, tuple(args), exc_info=True)
            if getattr(exc, "retryable", True) and queue.retries:
                queue.retry_later(func, args, job_id, on_failure, request_id)
            elif on_failure:
                with app.app_context():
                    resolve(on_failure)(*args)
    context.request_id.set(None)
