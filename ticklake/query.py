"""CQL time-range queries over the hot store, one partition (symbol, day) at a time. The
statements name the keyspace of each table: the session uses none (a ``USE`` before preparing
draws a warning from Cassandra for every statement)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta

from ticklake.config import Settings
from ticklake.cql import cassandra_session
from ticklake.times import DAY, utc_day


def days(start: datetime, end: datetime) -> Iterator[date]:
    """The UTC days that ``[start, end)`` touches, newest first (the tables' clustering order)."""
    day, first = utc_day(end - timedelta(microseconds=1)), utc_day(start)
    while day >= first:
        yield day
        day -= DAY


def _per_day(settings: Settings, cql: str, partition: Callable[[date], tuple], start: datetime, end: datetime,
             limit: int | None) -> list:
    """Run ``cql`` for each day's partition of ``[start, end)``, newest first, up to ``limit`` rows."""
    session = cassandra_session(settings)
    try:
        statement = session.prepare(cql)
        rows: list = []
        for day in days(start, end):
            rows.extend(session.execute(statement, (*partition(day), start, end)))
            if limit is not None and len(rows) >= limit:
                return rows[:limit]
        return rows
    finally:
        session.cluster.shutdown()


def bars(settings: Settings, symbol: str, start: datetime, end: datetime, limit: int | None = None) -> list:
    """1-minute bars of ``symbol`` with ``start <= window_start < end``, newest first."""
    return _per_day(settings, bars_cql(settings), lambda day: (symbol, day), start, end, limit)


def trades(settings: Settings, symbol: str, start: datetime, end: datetime, limit: int | None = None) -> list:
    """Raw trades of ``symbol`` with ``start <= trade_ts < end``, newest first."""
    return _per_day(settings, trades_cql(settings), lambda day: (symbol, day.year, day.month, day.day),
                    start, end, limit)


def bars_cql(settings: Settings) -> str:
    """The statement of one day's bars of a symbol in a time range."""
    return (f"SELECT * FROM {settings.cassandra.qualified(settings.cassandra.bars_table)} "
            "WHERE symbol = ? AND trade_date = ? AND window_start >= ? AND window_start < ?")


def trades_cql(settings: Settings) -> str:
    """The statement of one day's trades of a symbol in a time range."""
    return (f"SELECT * FROM {settings.cassandra.qualified(settings.cassandra.trades_table)} "
            "WHERE symbol = ? AND trade_year = ? AND trade_month = ? AND trade_day = ? "
            "AND trade_ts >= ? AND trade_ts < ?")
