"""Readiness: the database answers and the job queue is reachable."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from gateway.database import session


def readiness() -> dict:
    checks = {}
    try:
        session().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports, it does not raise
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        current_app.extensions["gateway.queue"].ping()
        checks["queue"] = "ok"
    except Exception as exc:
        checks["queue"] = f"error: {exc.__class__.__name__}"
    return checks
