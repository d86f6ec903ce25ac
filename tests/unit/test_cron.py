"""Cron due times and the validation of [[schedule.jobs]]."""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import islice

import pytest
from pydantic import ValidationError

from ticklake.config import ScheduledJob, ScheduleSettings
from ticklake.cron import longest_gap_seconds, next_time, next_times, validate

UTC = timezone.utc


def test_due_times_are_strictly_after_and_ascending():
    at = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    assert list(islice(next_times("*/15 * * * *", at), 3)) == [
        datetime(2026, 11, 23, 10, 30, tzinfo=UTC), datetime(2026, 11, 23, 10, 45, tzinfo=UTC),
        datetime(2026, 11, 23, 11, 0, tzinfo=UTC)]
    assert next_time("40 3 * * *", datetime(2026, 11, 23, 3, 40, 0, 1, tzinfo=UTC)) == datetime(2026, 11, 24, 3, 40, tzinfo=UTC)


def test_weekdays_months_and_macros():
    friday_evening = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    assert next_time("0 6 * * 1-5", friday_evening) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday
    assert next_time("@monthly", friday_evening) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_time("0 0 29 2 *", friday_evening) == datetime(2028, 2, 29, tzinfo=UTC)
    # Day of month and day of week both restricted: either matches (cron's rule).
    assert next_time("0 0 13 * 5", datetime(2026, 11, 14, tzinfo=UTC)) == datetime(2026, 11, 20, tzinfo=UTC)


def test_a_zone_keeps_local_wall_time_across_daylight_saving():
    before = next_time("0 9 * * *", datetime(2026, 3, 7, 12, 0, tzinfo=UTC), "America/New_York")  # DST starts on the 8th
    after = next_time("0 9 * * *", before, "America/New_York")
    assert before.astimezone(UTC).hour == 14 and after.astimezone(UTC).hour == 13  # EST, then EDT
    assert (before.hour, after.hour) == (9, 9)


@pytest.mark.parametrize("expression, message", [
    ("* * * *", "five fields"), ("* * * * * *", "five fields"), ("61 * * * *", "invalid"),
    ("* * * jan-foo *", "invalid"), ("@often", "unknown cron macro"),
])
def test_invalid_expressions_name_the_job(expression, message):
    with pytest.raises(ValueError, match=f"nightly: .*{message}"):
        validate(expression, "nightly")


def test_schedule_settings_refuse_bad_entries():
    with pytest.raises(ValidationError, match="five fields"):
        ScheduledJob(name="x", cron="* *", command="true")
    with pytest.raises(ValidationError, match="name"):
        ScheduledJob(name="Not A DNS Label", cron="* * * * *", command="true")
    with pytest.raises(ValidationError, match="unknown time zone"):
        ScheduleSettings(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="unique"):
        ScheduleSettings(jobs=[ScheduledJob(name="a", cron="@daily", command="true")] * 2)


def test_the_longest_gap_of_a_weekday_job_is_its_weekend():
    monday = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    assert longest_gap_seconds("0 6 * * 1-5", monday) == 3 * 24 * 3600
    assert longest_gap_seconds("20 0 * * *", monday) == 24 * 3600
    assert longest_gap_seconds("*/15 * * * *", monday) == 15 * 60
