"""`flask --app wsgi worker`: an RQ worker with its scheduler, and the outbox relay beside it."""

from __future__ import annotations

import threading
import time

from adapters import jobs, outbox

RELAY_INTERVAL = 2.0


def run(app, burst: bool = False) -> None:
    queue = app.extensions["gateway.queue"]
    if not isinstance(queue, jobs.RQQueue):
        raise SystemExit("GATEWAY_REDIS_URL is not set: the in-process queue needs no worker.")
    from rq import Worker

    jobs.set_worker_app(app)
    sessionmaker = app.extensions["gateway.db"].sessionmaker
    stop = threading.Event()

    def relay_loop():
        # Picks up what a crashed request committed but never enqueued, and what waited out
        # a Redis outage.
        while not stop.is_set():
            try:
                outbox.relay(sessionmaker, queue)
            except Exception:  # the database may be briefly unreachable; try again next tick
                app.logger.exception("outbox relay failed")
            stop.wait(RELAY_INTERVAL)

    outbox.relay(sessionmaker, queue)
    relay = threading.Thread(target=relay_loop, name="outbox-relay", daemon=True)
    relay.start()
    try:
        Worker([queue.queue], connection=queue.connection).work(with_scheduler=True, burst=burst)
    finally:
        stop.set()
        time.sleep(0)
