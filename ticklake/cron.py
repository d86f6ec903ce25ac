"""Cron expressions: the five-field syntax that crontab and Kubernetes CronJobs share.

``croniter`` does the calendar arithmetic; this module keeps expressions to what every
scheduler ticklake feeds understands (five fields or an ``@hourly``-style macro, no
seconds field) and works in the schedule's time zone.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def validate(expression: str, name: str = "job") -> None:
    """Raise ``ValueError`` naming the job unless ``expression`` is a valid five-field cron line."""
    text = expression.strip()
    if text.startswith("@"):
        if text not in MACROS:
            raise ValueError(f"{name}: unknown cron macro {text!r}; use one of {', '.join(MACROS)}")
        return
    if len(text.split()) != 5:
        raise ValueError(f"{name}: cron expression {expression!r} needs five fields: "
                         "minute hour day-of-month month day-of-week")
    if not croniter.is_valid(text):
        raise ValueError(f"{name}: invalid cron expression {expression!r}")


def next_times(expression: str, after: datetime, timezone: str = "UTC") -> Iterator[datetime]:
    """The times ``expression`` is due strictly after ``after``, in ``timezone``, ascending."""
    start = after.astimezone(ZoneInfo(timezone))
    return croniter(expression.strip(), start, ret_type=datetime)


def next_time(expression: str, after: datetime, timezone: str = "UTC") -> datetime:
    return next(next_times(expression, after, timezone))


def longest_gap_seconds(expression: str, after: datetime, timezone: str = "UTC", runs: int = 15) -> float:
    """The longest time between two of the next ``runs`` due times (a weekday job's weekend)."""
    times = next_times(expression, after, timezone)
    due = [next(times) for _ in range(runs)]
    return max((b - a).total_seconds() for a, b in zip(due, due[1:]))
