"""The id of the request a piece of work descends from, carried from the request through the
outbox and the job queue to the job, so that a job's log lines name the request that caused it."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
