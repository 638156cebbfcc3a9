"""`flask --app wsgi worker`: an RQ worker with its scheduler, and the outbox relay beside it."""

from __future__ import annotations

import gc
import os
import threading
import time

from adapters import jobs, outbox

RELAY_INTERVAL = 2.0
# A live RQ scheduler refreshes its lock (TTL interval + 60 s) every second; one not refreshed
# for this long belongs to a scheduler that died (its worker was killed). RQ itself would wait
# for the lock to expire (a minute) and retry only at its next maintenance (ten minutes), and
# job retries wait for a scheduler meanwhile.
STALE_SCHEDULER_SECONDS = 5
# RQ sends a standalone heartbeat (three Redis round trips) up to four times per job, and writes
# the worker's state even when it has not changed: under load that was half of RQ's Redis
# traffic per job. The key it refreshes lives for minutes (worker_ttl + 60 s), so once a second
# is plenty; the heartbeats RQ pipelines with a job's start are all still sent.
HEARTBEAT_EVERY = 1.0


def take_over_dead_scheduler(worker, stale_seconds: float = STALE_SCHEDULER_SECONDS) -> bool:
    """Frees a dead scheduler's lock and starts this worker's scheduler in its place."""
    from rq.scheduler import RQScheduler
    from rq.scripts import release_lock

    scheduler = worker.scheduler
    if scheduler is None or (scheduler._process is not None and scheduler._process.is_alive()):
        return False
    conn = worker.connection
    full_ttl = scheduler.interval + 60
    for name in worker.queue_names():
        key = RQScheduler.get_locking_key(name)
        holder, ttl = conn.get(key), conn.ttl(key)
        if holder is not None and 0 <= ttl < full_ttl - stale_seconds:
            release_lock(conn, key, holder.decode() if isinstance(holder, bytes) else holder)
    return bool(scheduler.acquire_locks(auto_start=True))


def worker_class():
    """SimpleWorker that leaves out redundant heartbeats and state writes (see above)."""
    from rq import SimpleWorker

    class GatewayWorker(SimpleWorker):
        _beat_at = float("-inf")

        def heartbeat(self, timeout=None, pipeline=None):
            moment = time.monotonic()
            if pipeline is None and timeout is None and moment - self._beat_at < HEARTBEAT_EVERY:
                return
            super().heartbeat(timeout, pipeline)
            self._beat_at = moment

        def set_state(self, state, pipeline=None):
            if pipeline is None and state == getattr(self, "_state", None):
                return
            super().set_state(state, pipeline)

    return GatewayWorker


def run(app, burst: bool = False, tick=None) -> None:
    """`tick` (in app context) is the periodic pass; by default the outbox relay alone."""
    queue = app.extensions["gateway.queue"]
    if not isinstance(queue, jobs.RQQueue):
        raise SystemExit("GATEWAY_REDIS_URL is not set: the in-process queue needs no worker.")
    jobs.set_worker_app(app)
    # As gunicorn's workers do (gateway/gunicorn_conf.py): what lives now lives as long as the
    # worker; frozen, the collector's full passes stop walking it (160 ms pauses, then 20 ms).
    gc.collect()
    gc.freeze()
    # Should anything fork (RQ's scheduler process), the child must not reuse the pooled
    # database connections this process keeps using: it gets a pool of its own.
    engine = app.extensions["gateway.db"].engine
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    sessionmaker = app.extensions["gateway.db"].sessionmaker
    stop = threading.Event()

    def one_pass():
        if tick is None:
            outbox.relay(sessionmaker, queue)
            return
        with app.app_context():
            tick()

    # Jobs run in this process, not in a work horse forked per job: a fork and a new database
    # connection per job cost more CPU than the job itself (an order's apply is 4 statements),
    # and the pool, the caches and the imported keys stay warm. A job that dies takes the
    # worker with it, as a SIGKILL would: RQ marks it abandoned, the stuck-order pass resends.
    worker = worker_class()([queue.queue], connection=queue.connection, log_job_description=False)

    def relay_loop():
        # Picks up what a crashed request committed but never enqueued, and what waited out
        # a Redis outage; and takes over the scheduler of a worker that died.
        while not stop.is_set():
            try:
                take_over_dead_scheduler(worker)
            except Exception:  # Redis may be briefly unreachable; try again next tick
                app.logger.exception("scheduler take-over check failed")
            try:
                one_pass()
            except Exception:  # the database may be briefly unreachable; try again next tick
                app.logger.exception("periodic pass failed")
            stop.wait(app.config.get("TICK_SECONDS", RELAY_INTERVAL))

    one_pass()
    relay = threading.Thread(target=relay_loop, name="outbox-relay", daemon=True)
    relay.start()
    listener = None
    if engine.dialect.name == "postgresql":
        # What any process commits for the queue is relayed from here, at once (not by the
        # processes that serve requests: their CPU goes to the requests).
        listener = threading.Thread(target=outbox.relay_when_notified, name="outbox-listener",
                                    args=(engine, sessionmaker, queue, stop), daemon=True)
        listener.start()
    try:
        worker.work(with_scheduler=True, burst=burst,
                    logging_level=app.config.get("WORKER_LOG_LEVEL", "WARNING"))
    finally:
        stop.set()
        relay.join(30)
        if listener is not None:
            listener.join(5)
        # A take-over pass that ran after the warm shutdown had stopped the scheduler started a
        # new one; nothing else stops it, and exiting would wait for it (a non-daemon process)
        # for ever: stop it too.
        scheduler = worker.scheduler
        if scheduler is not None and scheduler._process is not None and scheduler._process.is_alive():
            worker.stop_scheduler()
