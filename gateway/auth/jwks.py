"""Issuers' public keys: inline, or fetched from jwks_uri, cached with a TTL."""

from __future__ import annotations

import threading
import time

import requests
from joserfc.jwk import KeySet


class JWKSCache:
    """One refetch on an unknown kid, at most once per interval per issuer, so a flood of
    tokens with made-up kids cannot turn the gateway into a load generator against an IdP."""

    def __init__(self, ttl: int, refetch_interval: int, timeout: float = 5.0):
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.timeout = timeout
        self._entries: dict[str, tuple[KeySet, float]] = {}
        self._refetched_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(self, uri: str, *, kid: str | None = None) -> KeySet:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(uri)
        if entry is None:
            return self._fetch(uri)
        if now - entry[1] > self.ttl:
            try:
                return self._fetch(uri)
            except Exception:
                # The IdP's key server is down: keys it published are still its keys. Serve them
                # rather than lock every one of its users out until it is back.
                return entry[0]
        keys = entry[0]
        if kid is not None and not _has_kid(keys, kid) and self._may_refetch(uri, now):
            return self._fetch(uri)
        return keys

    def _may_refetch(self, uri: str, now: float) -> bool:
        # Counted from the last unknown-kid refetch, not from the last fetch: a key rotated
        # just after a routine fetch is still picked up at once.
        with self._lock:
            last = self._refetched_at.get(uri)
            if last is not None and now - last < self.refetch_interval:
                return False
            self._refetched_at[uri] = now
            return True

    def _fetch(self, uri: str) -> KeySet:
        response = requests.get(uri, timeout=self.timeout)
        response.raise_for_status()
        keys = KeySet.import_key_set(response.json())
        with self._lock:
            self._entries[uri] = (keys, time.monotonic())
        return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def has_kid(keys: KeySet, kid: str | None) -> bool:
    return kid is None or _has_kid(keys, kid)
