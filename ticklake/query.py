"""CQL time-range queries over the hot store, one partition (symbol, day) at a time."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from ticklake.config import Settings
from ticklake.provision import cassandra_session


def days(start: datetime, end: datetime) -> Iterator[date]:
    """The UTC days that ``[start, end)`` touches, newest first (the tables' clustering order)."""
    day = (end - timedelta(microseconds=1)).astimezone(timezone.utc).date()
    first = start.astimezone(timezone.utc).date()
    while day >= first:
        yield day
        day -= timedelta(days=1)


def bars(settings: Settings, symbol: str, start: datetime, end: datetime) -> list:
    """1-minute bars of ``symbol`` with ``start <= window_start < end``, newest first."""
    c = settings.cassandra
    session = cassandra_session(settings, c.keyspace)
    try:
        statement = session.prepare(
            f"SELECT * FROM {c.bars_table} WHERE symbol = ? AND trade_date = ? "
            "AND window_start >= ? AND window_start < ?"
        )
        return [row for day in days(start, end) for row in session.execute(statement, (symbol, day, start, end))]
    finally:
        session.cluster.shutdown()


def trades(settings: Settings, symbol: str, start: datetime, end: datetime, limit: int | None = None) -> list:
    """Raw trades of ``symbol`` with ``start <= trade_ts < end``, newest first."""
    c = settings.cassandra
    session = cassandra_session(settings, c.keyspace)
    try:
        statement = session.prepare(
            f"SELECT * FROM {c.trades_table} WHERE symbol = ? AND trade_year = ? AND trade_month = ? "
            "AND trade_day = ? AND trade_ts >= ? AND trade_ts < ?"
        )
        rows = []
        for day in days(start, end):
            rows.extend(session.execute(statement, (symbol, day.year, day.month, day.day, start, end)))
            if limit is not None and len(rows) >= limit:
                return rows[:limit]
        return rows
    finally:
        session.cluster.shutdown()
