"""Releasing an idempotency claim whose request failed, even while the database is down.

A claim is committed before the order is priced, so that a concurrent request with the same key
is told "still being processed". When the request fails, the claim is released at once; when
that release itself fails (the database went away mid-order), it is retried from a thread of
this process every RETRY_SECONDS, so that the client's retry is served as soon as the database
is back rather than after the claim's lease. Only an unanswered claim is deleted: a commit that
succeeded but whose acknowledgement was lost keeps its stored answer, and the retry replays it.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete
from sqlalchemy.orm import Session

from gateway.orders.models import IdempotencyRecord

RETRY_SECONDS = 0.25
log = logging.getLogger(__name__)

_lock = threading.Lock()
_pending: dict[tuple[int, str, str], object] = {}  # (id(engine), scope, key) -> engine
_thread: threading.Thread | None = None


def delete_unanswered(db, scope: str, key: str) -> None:
    db.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
        IdempotencyRecord.response_status.is_(None)))


def release_later(engine, scope: str, key: str) -> None:
    global _thread
    with _lock:
        _pending[(id(engine), scope, key)] = engine
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="idempotency-release", daemon=True)
            _thread.start()


def pending() -> int:
    with _lock:
        return len(_pending)


def _run() -> None:
    stop = threading.Event()
    while True:
        with _lock:
            work = list(_pending.items())
            if not work:
                return
        for (ident, scope, key), engine in work:
            db = Session(engine)
            try:
                delete_unanswered(db, scope, key)
                db.commit()
            except Exception:  # still down: next round
                log.warning("idempotency claim release still failing; retrying")
                continue
            finally:
                db.close()
            with _lock:
                _pending.pop((ident, scope, key), None)
        stop.wait(RETRY_SECONDS)
