"""Settings from the environment, with embedded defaults that run with no setup."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "instance"


def from_environment(overrides: dict | None = None) -> dict:
    env = os.environ
    overrides = overrides or {}
    # Paths that default to the instance folder follow an overridden instance folder too.
    instance = Path(overrides.get("INSTANCE_PATH") or env.get("GATEWAY_INSTANCE_PATH", DEFAULT_INSTANCE))
    settings = {
        "ENV": env.get("GATEWAY_ENV", "development"),
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": env.get("GATEWAY_DATABASE_URL", f"sqlite:///{instance / 'gateway.db'}"),
        "REDIS_URL": env.get("GATEWAY_REDIS_URL") or None,
        "SELLER_COUNTRY": env.get("GATEWAY_SELLER_COUNTRY", "IE").upper(),
        # Our own issuer: the `iss` of service tokens and the audience every issuer must name.
        "ISSUER": env.get("GATEWAY_ISSUER", "http://127.0.0.1:8000"),
        "AUDIENCE": env.get("GATEWAY_AUDIENCE", "billing-gateway"),
        "SIGNING_KEY_FILE": env.get("GATEWAY_SIGNING_KEY_FILE") or None,
        "SERVICE_TOKEN_TTL": int(env.get("GATEWAY_SERVICE_TOKEN_TTL", "3600")),
        "DEV_ISSUER": env.get("GATEWAY_DEV_ISSUER", "1") not in ("0", "false", "no"),
        "JWKS_CACHE_TTL": int(env.get("GATEWAY_JWKS_CACHE_TTL", "300")),
        "JWKS_REFETCH_INTERVAL": int(env.get("GATEWAY_JWKS_REFETCH_INTERVAL", "30")),
        "FROZEN_TODAY": env.get("GATEWAY_FROZEN_TODAY") or None,
        "MAIL_DIR": env.get("GATEWAY_MAIL_DIR", str(instance / "mail")),
        "SMTP_URL": env.get("GATEWAY_SMTP_URL") or None,
        "BILLING_CENTER_URL": env.get("GATEWAY_BILLING_CENTER_URL") or None,
        "CORPORATE_PORTAL_URL": env.get("GATEWAY_CORPORATE_PORTAL_URL") or None,
        "ADAPTER_CLIENT_ID": env.get("GATEWAY_ADAPTER_CLIENT_ID") or None,
        "ADAPTER_CLIENT_SECRET": env.get("GATEWAY_ADAPTER_CLIENT_SECRET") or None,
        "ADAPTER_TOKEN_URL": env.get("GATEWAY_ADAPTER_TOKEN_URL") or None,
        "ADAPTER_TIMEOUT": float(env.get("GATEWAY_ADAPTER_TIMEOUT", "5")),
        # An adapter call's own quick retries (then the job queue's backoff takes over).
        "ADAPTER_RETRIES": int(env.get("GATEWAY_ADAPTER_RETRIES", "2")),
        "ADAPTER_BACKOFF": float(env.get("GATEWAY_ADAPTER_BACKOFF", "0.2")),
        "TICK_SECONDS": float(env.get("GATEWAY_TICK_SECONDS", "2")),
        "QUEUE_NAME": env.get("GATEWAY_QUEUE_NAME", "gateway"),
        "JOB_RETRIES": int(env.get("GATEWAY_JOB_RETRIES", "5")),
        # Seconds between retries of a failed job (RQ's scheduler); unset: 1, 2, 5, 10, 30, 60.
        "JOB_BACKOFF": [int(x) for x in env["GATEWAY_JOB_BACKOFF"].split(",")]
        if env.get("GATEWAY_JOB_BACKOFF") else None,
        "CASE_CLAIM_LEASE_SECONDS": int(env.get("GATEWAY_CASE_CLAIM_LEASE_SECONDS", "3600")),
        "IDEMPOTENCY_LEASE_SECONDS": int(env.get("GATEWAY_IDEMPOTENCY_LEASE_SECONDS", "60")),
        "STUCK_ORDER_SECONDS": int(env.get("GATEWAY_STUCK_ORDER_SECONDS", "120")),
        "IDEMPOTENCY_TTL_HOURS": int(env.get("GATEWAY_IDEMPOTENCY_TTL_HOURS", "48")),
        # "json" (one object per line) or "text" (for people, the default under `make run`).
        "LOG_FORMAT": env.get("GATEWAY_LOG_FORMAT", "json").lower(),
        # RQ's own lines (four per job at INFO: dequeued, completed, OK, result kept) cost the
        # worker more than our one line per step; its warnings and errors are always logged.
        "WORKER_LOG_LEVEL": env.get("GATEWAY_WORKER_LOG_LEVEL", "WARNING").upper(),
        # VIES (design.md §3.9): unset = off; "embedded" = the in-memory stand-in; else a URL.
        "VIES_URL": env.get("GATEWAY_VIES_URL") or None,
        "VIES_TIMEOUT": float(env.get("GATEWAY_VIES_TIMEOUT", "5")),
        "VIES_RECHECK_SECONDS": float(env.get("GATEWAY_VIES_RECHECK_SECONDS", "60")),
        # Webhooks (design.md §7): the SSRF guard's exception, the per-call timeout, and the
        # exponential backoff (base doubling up to a cap) kept up for RETRY_HOURS.
        "WEBHOOK_ALLOW_PRIVATE": env.get("GATEWAY_WEBHOOK_ALLOW_PRIVATE", "0") in ("1", "true", "yes"),
        "WEBHOOK_TIMEOUT": float(env.get("GATEWAY_WEBHOOK_TIMEOUT", "10")),
        # PEM certificates of the authorities receivers are verified against (a private CA of
        # internal systems); by default certifi's, as for every other HTTPS call.
        "WEBHOOK_CA_BUNDLE": env.get("GATEWAY_WEBHOOK_CA_BUNDLE") or None,
        # How long the fan-out waits for an event id still missing before the ones after it
        # (a transaction not committed yet; one rolled back never comes): gateway.webhooks.
        "WEBHOOK_GAP_WAIT_SECONDS": float(env.get("GATEWAY_WEBHOOK_GAP_WAIT_SECONDS", "2")),
        "WEBHOOK_BACKOFF_SECONDS": float(env.get("GATEWAY_WEBHOOK_BACKOFF_SECONDS", "10")),
        "WEBHOOK_BACKOFF_MAX_SECONDS": float(env.get("GATEWAY_WEBHOOK_BACKOFF_MAX_SECONDS", "21600")),
        "WEBHOOK_RETRY_HOURS": float(env.get("GATEWAY_WEBHOOK_RETRY_HOURS", "24")),
        # Pages: how long a browser session lasts; the cookie's key (unset: derived from the
        # signing key, which production already requires to be a real file).
        "SESSION_HOURS": int(env.get("GATEWAY_SESSION_HOURS", "8")),
        "SECRET_KEY": env.get("GATEWAY_SECRET_KEY") or None,
        # How stale (seconds) a process's caches of issuers, policy and catalog may get before
        # it reads the version again (gateway/cache.py).
        "CACHE_MAX_AGE": float(env.get("GATEWAY_CACHE_MAX_AGE", "1")),
    }
    settings.update(overrides)
    return settings


class UnsafeProductionConfig(RuntimeError):
    """Raised at start-up when production would run on a development-only shortcut."""


def check_production(settings: dict) -> None:
    if settings["ENV"] != "production":
        return
    problems = []
    if settings["DEV_ISSUER"]:
        problems.append("the development issuer is enabled (set GATEWAY_DEV_ISSUER=0)")
    if not settings["SIGNING_KEY_FILE"]:
        problems.append("no signing key configured (set GATEWAY_SIGNING_KEY_FILE)")
    elif not Path(settings["SIGNING_KEY_FILE"]).is_file():
        # Else a key would be generated on the spot: tokens die with the process's disk.
        problems.append(f"the signing key file {settings['SIGNING_KEY_FILE']} does not exist")
    if settings["FROZEN_TODAY"]:
        problems.append("GATEWAY_FROZEN_TODAY is a test-only setting")
    if problems:
        raise UnsafeProductionConfig("refusing to start in production: " + "; ".join(problems))
