from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.business_hours import business_due


@pytest.mark.parametrize(("start", "hours", "due"), [
    ("2026-11-28T02:03", 24, "2026-12-01T00:00"),  # Saturday: the weekend does not count
    ("2026-11-29T23:59", 1, "2026-11-30T01:00"),  # Sunday night
    ("2026-11-27T20:00", 24, "2026-11-30T20:00"),  # Friday evening: 4 h Friday, 20 h Monday
    ("2026-11-23T10:30", 24, "2026-11-24T10:30"),  # Monday: plain 24 hours
    ("2026-11-27T23:30", 1, "2026-11-30T00:30"),  # half an hour on Friday, half on Monday
    ("2026-11-23T09:00", 120, "2026-11-30T09:00"),  # a business week is a calendar week
    ("2026-11-28T12:00", 0, "2026-11-30T00:00"),  # nothing to wait, but nobody works Sunday
])
def test_business_due(start, hours, due):
    assert business_due(datetime.fromisoformat(start), hours) == datetime.fromisoformat(due)


any_times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1))


@given(any_times, st.integers(0, 500))
def test_due_counts_exactly_the_hours_of_weekday_time(start, hours):
    due = business_due(start, hours)
    assert due >= start
    # the wait ends inside weekday time: at its last moment (Friday 24:00 is Saturday 00:00)
    assert (due - timedelta(microseconds=1)).weekday() < 5 if hours else due.weekday() < 5
    # weekday time between start and due, minute by minute on hour-aligned pieces
    counted, at = timedelta(0), start
    while at < due:
        step = min(due, at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)) - at
        if at.weekday() < 5:
            counted += step
        at += step
    assert counted == timedelta(hours=hours)


def test_negative_hours_are_refused():
    with pytest.raises(ValueError):
        business_due(datetime(2026, 1, 1), -1)
