"""gunicorn settings: `gunicorn -c python:gateway.gunicorn_conf wsgi:app`.

Prometheus multiprocess mode: each worker (and the RQ worker, given the same directory) writes
its counters and histograms to files under PROMETHEUS_MULTIPROC_DIR, and `/metrics`, whichever
worker answers it, adds them all up. The variable must be set before any worker imports
prometheus-client, which is why it is set here, in the master, before the workers start.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# A listening socket per worker (SO_REUSEPORT), so that the kernel spreads connections over
# the workers. With one shared socket, the workers race to accept: clients that keep their
# connections open (a proxy's pool, a load generator) were seen, in half of the runs, all
# held by one worker, which then served everything on one CPU while the other idled.
reuse_port = True

_OWN_DIR = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _OWN_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")


def on_starting(server):
    # Files of an earlier run would be added to this run's counts: start from none. A directory
    # given by the operator is theirs to empty (it may be shared with the RQ worker).
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    if _OWN_DIR:
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    freeze_what_lives()


def freeze_what_lives() -> None:
    """The app is loaded: what exists now lives as long as the process. Frozen (moved out of
    the collector's generations), the collector's full passes no longer walk it. Measured in
    the bench's gunicorn workers: a full pass over about 195,000 objects stopped every thread
    of the worker for 160 ms, once per worker and run, long enough to show in a quote's p99;
    with them frozen it took 20 ms."""
    import gc

    gc.collect()  # garbage is not frozen with the rest
    gc.freeze()
