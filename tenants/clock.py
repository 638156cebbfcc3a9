"""The one clock: what "today" and "now" are. Injected (never read from the machine directly)
so that tests and demos can freeze it; timestamps are naive UTC, as the columns store them."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta


class Clock:
    def now(self) -> datetime:
        raise NotImplementedError

    def today(self) -> date:
        return self.now().date()


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)


class FrozenDateClock(SystemClock):
    """`GATEWAY_FROZEN_TODAY`: the date is fixed (prices, periods); time still passes, so that
    leases, TTLs and "newest first" keep working in tests and demos."""

    def __init__(self, today: date):
        self._today = today

    def today(self) -> date:
        return self._today


class ManualClock(Clock):
    """A clock that moves only when told to (tests)."""

    def __init__(self, now: datetime):
        self._now = now
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta) -> None:
        with self._lock:
            self._now += timedelta(**delta)


SYSTEM = SystemClock()
