"""Which (symbol, day) partitions a time range reads."""
from __future__ import annotations

from datetime import date, datetime, timezone

from ticklake.config import Settings
from ticklake.query import bars_cql, days, trades_cql


def test_days_newest_first_end_exclusive():
    start = datetime(2026, 11, 21, 23, 59, tzinfo=timezone.utc)
    end = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
    assert list(days(start, end)) == [date(2026, 11, 22), date(2026, 11, 21)]


def test_days_use_utc_whatever_the_offset():
    start = datetime.fromisoformat("2026-11-23T01:00:00+02:00")  # 2026-11-22T23:00Z
    end = datetime.fromisoformat("2026-11-23T03:00:00+02:00")
    assert list(days(start, end)) == [date(2026, 11, 23), date(2026, 11, 22)]


def test_statements_name_the_keyspace_of_their_table():
    """The session uses no keyspace: a ``USE`` draws Cassandra's warning on every prepare."""
    settings = Settings(cassandra={"keyspace": "ks", "bars_table": "bars", "trades_table": "trades"})
    assert bars_cql(settings).startswith("SELECT * FROM ks.bars WHERE symbol = ? AND trade_date = ?")
    assert trades_cql(settings).startswith("SELECT * FROM ks.trades WHERE symbol = ? AND trade_year = ?")
