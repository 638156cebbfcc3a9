"""Picks the job queue and the adapters' implementations from the settings."""

from __future__ import annotations

from adapters.jobs import InProcessQueue, RQQueue


def init_app(app) -> None:
    cfg = app.config
    if cfg["REDIS_URL"]:
        app.extensions["gateway.queue"] = RQQueue(cfg["REDIS_URL"], cfg["JOB_RETRIES"],
                                                  cfg.get("JOB_BACKOFF"))
    else:
        app.extensions["gateway.queue"] = InProcessQueue(app, cfg["JOB_RETRIES"],
                                                         cfg.get("JOB_BACKOFF_SCALE", 1.0))
