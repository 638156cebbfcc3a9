"""`flask --app wsgi worker`: an RQ worker with its scheduler, and the outbox relay beside it."""

from __future__ import annotations

import os
import threading
import time

from adapters import jobs, outbox

RELAY_INTERVAL = 2.0


def run(app, burst: bool = False, tick=None) -> None:
    """`tick` (in app context) is the periodic pass; by default the outbox relay alone."""
    queue = app.extensions["gateway.queue"]
    if not isinstance(queue, jobs.RQQueue):
        raise SystemExit("GATEWAY_REDIS_URL is not set: the in-process queue needs no worker.")
    from rq import Worker

    jobs.set_worker_app(app)
    # RQ forks a work horse per job; the horse must not reuse the pooled database connections
    # it inherits, which this process (the relay thread) keeps using: give it a pool of its own.
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

    def relay_loop():
        # Picks up what a crashed request committed but never enqueued, and what waited out
        # a Redis outage.
        while not stop.is_set():
            try:
                one_pass()
            except Exception:  # the database may be briefly unreachable; try again next tick
                app.logger.exception("periodic pass failed")
            stop.wait(app.config.get("TICK_SECONDS", RELAY_INTERVAL))

    one_pass()
    relay = threading.Thread(target=relay_loop, name="outbox-relay", daemon=True)
    relay.start()
    try:
        Worker([queue.queue], connection=queue.connection).work(with_scheduler=True, burst=burst)
    finally:
        stop.set()
        time.sleep(0)
