"""Per-process caches of data that changes rarely (issuers and their imported keys, tenants'
policy, the catalog, contacts' memberships, whether any webhook endpoint listens), kept honest
by one version number.

Every change to those tables bumps `cache_versions.admin` in its own transaction (a flush
hook, so no admin code path can forget it). Each process remembers the version its entries
were read under: hot queries carry the version along (`version_column()`, no extra round
trip), and a request that finds the last sighting older than `CACHE_MAX_AGE` seconds reads it
first (one cheap SELECT). A change is thus seen by the process that made it at once, and by
every other process within `CACHE_MAX_AGE` (1 s by default) or on its next hot query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from gateway.webhooks.models import WebhookEndpoint
from tenants.models import (
    Advisor,
    CacheVersion,
    Contact,
    Issuer,
    Membership,
    Plan,
    Price,
    Product,
    Tenant,
    TenantIssuer,
)

NAME = "admin"
WATCHED = (Issuer, Tenant, TenantIssuer, Product, Plan, Price, Contact, Membership, Advisor,
           WebhookEndpoint)
WATCHED_TABLES = frozenset(cls.__tablename__ for cls in WATCHED)
MAX_ENTRIES = 10_000  # per kind: a flood of made-up issuers or subjects cannot grow it further
_UNKNOWN = object()


def version_column():
    """The current version, as a column any query can carry along."""
    return (select(CacheVersion.version).where(CacheVersion.name == NAME)
            .scalar_subquery().label("cache_version"))


class ConfigCache:
    def __init__(self, max_age: float = 1.0):
        self.max_age = max_age
        self._lock = threading.Lock()
        self._version: Any = _UNKNOWN
        self._seen_at = float("-inf")
        self._maps: dict[str, dict] = {}

    def observe(self, version) -> None:
        """A version read by a query the request made anyway."""
        with self._lock:
            if version != self._version:
                self._maps = {}
                self._version = version
            self._seen_at = time.monotonic()

    def refresh(self, db) -> None:
        """Reads the version if it has not been seen for `max_age` seconds."""
        if time.monotonic() - self._seen_at > self.max_age:
            self.observe(db.scalar(select(CacheVersion.version).where(CacheVersion.name == NAME)))

    def invalidate(self) -> None:
        """This process changed the data: forget everything, read the version again."""
        with self._lock:
            self._maps = {}
            self._version = _UNKNOWN
            self._seen_at = float("-inf")

    def has(self, kind: str, key) -> bool:
        entries = self._maps.get(kind)
        return entries is not None and key in entries

    def get(self, kind: str, key, load: Callable[[], Any]):
        maps = self._maps
        entries = maps.get(kind)
        if entries is not None and key in entries:
            return entries[key]
        value = load()
        with self._lock:
            if self._maps is maps:  # not invalidated while loading
                entries = maps.setdefault(kind, {})
                if len(entries) >= MAX_ENTRIES:
                    entries.clear()
                entries[key] = value
        return value


# -- bumping ---------------------------------------------------------------------------------
def _bump(session: Session) -> None:
    session.connection().execute(update(CacheVersion).where(CacheVersion.name == NAME)
                                 .values(version=CacheVersion.version + 1))
    session.info["cache_bumped"] = True


@event.listens_for(Session, "before_flush")
def _bump_on_change(session: Session, _ctx, _instances) -> None:
    if any(isinstance(o, WATCHED) for part in (session.new, session.dirty, session.deleted)
           for o in part):
        _bump(session)


@event.listens_for(Session, "do_orm_execute")
def _bump_on_bulk(state) -> None:
    if (state.is_update or state.is_delete) and getattr(state.statement, "table", None) is not None \
            and state.statement.table.name in WATCHED_TABLES:
        _bump(state.session)


@event.listens_for(Session, "after_commit")
def _invalidate_here(session: Session) -> None:
    if session.info.pop("cache_bumped", False):
        cache = session.info.get("cache")
        if cache is not None:
            cache.invalidate()


@event.listens_for(Session, "after_rollback")
def _forget_bump(session: Session) -> None:
    session.info.pop("cache_bumped", None)
