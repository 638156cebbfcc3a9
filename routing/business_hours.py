"""When an answer is due, counted in business hours (design.md §3.8): only time on a weekday
(Monday to Friday, UTC) counts, so whole hours that start on a Saturday or Sunday are skipped."""

from __future__ import annotations

from datetime import datetime, timedelta

WEEKEND = (5, 6)  # Saturday, Sunday (datetime.weekday())


def _next_weekday_start(at: datetime) -> datetime:
    """`at` itself on a weekday, else the Monday 00:00 that follows."""
    if at.weekday() not in WEEKEND:
        return at
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=7 - at.weekday())


def business_due(start: datetime, hours: int) -> datetime:
    """`start` plus `hours` of weekday time: a case opened on Saturday 02:03 with 24 hours is due
    on Tuesday 00:00; one opened on Friday 20:00 is due on Monday 20:00."""
    if hours < 0:
        raise ValueError("hours must be >= 0")
    at = _next_weekday_start(start)
    left = timedelta(hours=hours)
    while left > timedelta(0):
        midnight = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        step = min(left, midnight - at)
        at += step
        left -= step
        if left > timedelta(0):
            at = _next_weekday_start(at)
    return at
