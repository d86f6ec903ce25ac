"""Times on command lines (ISO, UTC unless it has an offset, or relative to now, for schedules),
in messages, and aligned to whole minutes or days (UTC)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

_RELATIVE = re.compile(r"^now(?:-(\d+)([mhd]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """``2026-11-23T09:00``, ``2026-11-23T09:00+01:00``, ``now``, ``now-90m``, ``now-6h``, ``now-30d``
    as an aware UTC datetime. A ValueError says what is accepted (``ticklake.arguments.time`` is the
    argparse type that shows it)."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        base = now or datetime.now(timezone.utc)
        amount, unit = relative.groups()
        return base - timedelta(**{_UNITS[unit]: int(amount)}) if amount else base
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use ISO (2026-11-23T09:00, UTC unless it has an offset) "
                         "or now, now-90m, now-6h, now-30d") from None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def shown(value: datetime) -> str:
    """A time for messages: ISO to the second (``2026-11-23T09:00:00+00:00``)."""
    return value.isoformat(timespec="seconds")


MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def floor_time(value: datetime, unit: timedelta) -> datetime:
    """The start of the whole ``unit`` (``MINUTE``, ``DAY``: UTC midnights) that holds ``value``, in UTC."""
    return EPOCH + (value.astimezone(timezone.utc) - EPOCH) // unit * unit


def utc_day(value: datetime) -> date:
    """The UTC day of ``value`` (a naive time is taken as the machine's local time, as Python does)."""
    return value.astimezone(timezone.utc).date()


def whole(start: datetime, end: datetime, unit: timedelta) -> tuple[datetime, datetime]:
    """``[start, end)`` widened to whole units: ``start`` down, ``end`` up (unless already whole)."""
    last = floor_time(end, unit)
    return floor_time(start, unit), last if last == end else last + unit

