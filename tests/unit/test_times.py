"""Times on command lines, and aligned to whole minutes and days."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from ticklake.times import DAY, MINUTE, floor_time, parse_time, utc_day, whole

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def test_iso_times_are_utc_unless_they_say_otherwise():
    assert parse_time("2026-11-23T09:00") == datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    assert parse_time("2026-11-23T10:00+01:00") == datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("now", NOW), ("now-90m", datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc)),
    ("now-6h", datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc)),
    ("now-30d", datetime(2026, 10, 24, 12, 0, tzinfo=timezone.utc)),
])
def test_relative_times_for_schedules(text, expected):
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "now+1d", "now-1w", "2026-13-01"])
def test_anything_else_says_what_is_accepted(text):
    with pytest.raises(ValueError, match="now-30d"):
        parse_time(text)


def test_times_align_to_whole_utc_minutes_and_days():
    paris = timezone(timedelta(hours=1))
    value = datetime(2026, 11, 23, 0, 30, 59, 999_999, tzinfo=paris)  # 23:30:59.999999 UTC the day before
    assert floor_time(value, MINUTE) == datetime(2026, 11, 22, 23, 30, tzinfo=timezone.utc)
    assert floor_time(value, DAY) == datetime(2026, 11, 22, tzinfo=timezone.utc)
    assert utc_day(value) == date(2026, 11, 22) != value.date()
    start, end = datetime(2026, 11, 23, 9, 0, 1, tzinfo=timezone.utc), datetime(2026, 11, 23, 9, 5, tzinfo=timezone.utc)
    assert whole(start, end, MINUTE) == (datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc), end)
    assert whole(start, end + timedelta(microseconds=1), MINUTE)[1] == datetime(2026, 11, 23, 9, 6, tzinfo=timezone.utc)
    assert whole(start, end, DAY) == (datetime(2026, 11, 23, tzinfo=timezone.utc),
                                      datetime(2026, 11, 24, tzinfo=timezone.utc))

