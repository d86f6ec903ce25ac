"""What the pipeline stored, read back from Cassandra and Iceberg, and compared with tests.reference."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ticklake import lake, query


def epoch_ms(value: datetime) -> int:
    return int(value.replace(tzinfo=value.tzinfo or timezone.utc).timestamp() * 1000)


def time_range(trades) -> tuple[datetime, datetime]:
    """A range around the trades' times, a minute of margin either side."""
    start = datetime.fromtimestamp(min(t.time_ms for t in trades) / 1000, timezone.utc) - timedelta(minutes=1)
    end = datetime.fromtimestamp(max(t.time_ms for t in trades) / 1000, timezone.utc) + timedelta(minutes=1)
    return start, end


def cassandra_bars(settings, symbols, start, end) -> dict:
    return {(row.symbol, epoch_ms(row.window_start)): row._asdict()
            for symbol in symbols for row in query.bars(settings, symbol, start, end)}


def lake_rows(settings, table: str) -> list[dict]:
    return lake.catalog(settings).load_table(f"{settings.iceberg.namespace}.{table}").scan().to_arrow().to_pylist()


def iceberg_bars(settings) -> dict:
    return {(r["symbol"], epoch_ms(r["window_start"])): r for r in lake_rows(settings, settings.iceberg.bars_table)}


def cassandra_trade_ids(settings, symbols, start, end) -> list[tuple[int, int]]:
    return [(row.kafka_partition, row.kafka_offset)
            for symbol in symbols for row in query.trades(settings, symbol, start, end, limit=None)]


def iceberg_trade_ids(settings) -> list[tuple[int, int]]:
    return [(r["kafka_partition"], r["kafka_offset"]) for r in lake_rows(settings, settings.iceberg.trades_table)]


def assert_bars_equal(expected: dict, stored: dict, store: str) -> None:
    """Every bar, and only those, with exact open/high/low/close/count and volume/vwap to rounding."""
    assert set(stored) == set(expected), f"{store}: bars differ"
    for key, bar in expected.items():
        row = stored[key]
        for field in ("open", "high", "low", "close", "trade_count"):
            assert row[field] == bar[field], (store, key, field)
        assert row["volume"] == pytest.approx(bar["volume"], rel=1e-12), (store, key)
        if bar["vwap"] is None:
            assert row["vwap"] is None, (store, key)
        else:
            assert row["vwap"] == pytest.approx(bar["vwap"], rel=1e-9), (store, key)


def assert_stores_hold_exactly(settings, trades) -> None:
    """Both stores hold each trade of the topic once and the bars of the independent computation."""
    from tests import reference

    start, end = time_range(trades)
    symbols = {t.symbol for t in trades}
    ids = sorted((t.partition, t.offset) for t in trades)
    assert sorted(cassandra_trade_ids(settings, symbols, start, end)) == ids
    assert sorted(iceberg_trade_ids(settings)) == ids
    expected = reference.bars(trades)
    assert_bars_equal(expected, cassandra_bars(settings, symbols, start, end), "cassandra")
    assert_bars_equal(expected, iceberg_bars(settings), "iceberg")
