"""Picks the job queue and the adapters' implementations from the settings."""

from __future__ import annotations

from adapters.billing_center import EmbeddedBillingCenter
from adapters.corporate_portal import EmbeddedCorporatePortal
from adapters.jobs import InProcessQueue, RQQueue


def init_app(app) -> None:
    cfg = app.config
    if cfg["REDIS_URL"]:
        app.extensions["gateway.queue"] = RQQueue(cfg["REDIS_URL"], cfg["JOB_RETRIES"],
                                                  cfg.get("JOB_BACKOFF"), cfg["QUEUE_NAME"])
    else:
        q = InProcessQueue(app, cfg["JOB_RETRIES"], cfg.get("JOB_BACKOFF_SCALE", 1.0),
                           tick_seconds=cfg["TICK_SECONDS"])
        app.extensions["gateway.queue"] = q
        # Started with the first request, so CLI commands (db upgrade) start no thread.
        app.before_request(q.start)
    app.extensions["gateway.billing_center"] = cfg.get("BILLING_CENTER") or _billing_center(cfg)
    app.extensions["gateway.notifier"] = _notifier(cfg)
    app.extensions["gateway.corporate_portal"] = cfg.get("CORPORATE_PORTAL") or _portal(cfg)
    app.extensions["gateway.vies"] = cfg.get("VIES") or _vies(cfg)


def _notifier(cfg):
    from adapters import notifications

    if cfg.get("SMTP_URL"):
        return notifications.SmtpNotifier(cfg["SMTP_URL"])
    return notifications.FolderNotifier(cfg["MAIL_DIR"])


def _billing_center(cfg):
    if cfg.get("BILLING_CENTER_URL"):
        from adapters.billing_center_http import HttpBillingCenter

        return HttpBillingCenter.from_config(cfg)
    return EmbeddedBillingCenter()


def _portal(cfg):
    if cfg.get("CORPORATE_PORTAL_URL"):
        from adapters.corporate_portal_http import HttpCorporatePortal

        return HttpCorporatePortal.from_config(cfg)
    return EmbeddedCorporatePortal()


def _vies(cfg):
    """None: VIES is off (the offline check alone; numbers are `valid`)."""
    url = cfg.get("VIES_URL")
    if not url:
        return None
    if url == "embedded":
        from adapters.vies import EmbeddedVies

        return EmbeddedVies()
    from adapters.vies_http import HttpVies

    return HttpVies.from_config(cfg)
