"""The rollup job on real Spark and a real lake: exact OHLCV per timeframe, idempotent, and
corrections to the minutes (changed or deleted) carried into the rolled-up tables."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pyiceberg.expressions import EqualTo

from jobs.rollup_bars import rollup
from tests.lake_rows import append, arrow, bar
from ticklake import lake, lake_query

pytestmark = pytest.mark.integration

DAY1 = datetime(2026, 11, 23, tzinfo=timezone.utc)
TIMEFRAMES = {"5m": 300, "1h": 3600, "1d": 86400}


def minutes() -> list[dict]:
    """Two days of AAPL minutes around the hour and midnight, a zero-volume minute, some MSFT."""
    rows = []
    for i, offset in enumerate([9 * 60 + 58, 9 * 60 + 59, 10 * 60, 10 * 60 + 4, 10 * 60 + 7, 23 * 60 + 59,
                                24 * 60, 24 * 60 + 61]):
        rows.append(bar("AAPL", DAY1 + timedelta(minutes=offset), close=100 + (i * 7) % 5, volume=float(i % 3)))
    rows += [bar("MSFT", DAY1 + timedelta(minutes=m), close=50.0 + m, volume=2.0) for m in (600, 601, 24 * 60 + 5)]
    return rows


def expected(rows: list[dict], seconds: int) -> dict[tuple, dict]:
    """The rolled-up bars computed the plain way, keyed by (symbol, window_start)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        epoch = int(row["window_start"].timestamp())
        start = datetime.fromtimestamp(epoch - epoch % seconds, timezone.utc)
        groups.setdefault((row["symbol"], start), []).append(row)
    result = {}
    for key, group in groups.items():
        group.sort(key=lambda r: r["window_start"])
        volume = sum(r["volume"] for r in group)
        notional = sum(r["vwap"] * r["volume"] for r in group if r["vwap"] is not None)
        result[key] = {"open": group[0]["open"], "close": group[-1]["close"],
                       "high": max(r["high"] for r in group), "low": min(r["low"] for r in group),
                       "volume": volume, "trade_count": sum(r["trade_count"] for r in group),
                       "vwap": notional / volume if volume else None}
    return result


def stored(settings, timeframe: str) -> dict[tuple, dict]:
    table = lake.catalog(settings).load_table(lake.rollup_identifier(settings, timeframe))
    return {(r["symbol"], r["window_start"]): r for r in table.scan().to_arrow().to_pylist()}


def assert_matches(settings, rows):
    for timeframe, seconds in TIMEFRAMES.items():
        want, got = expected(rows, seconds), stored(settings, timeframe)
        assert set(got) == set(want), timeframe
        for key, bar_ in want.items():
            row = got[key]
            assert row["window_end"] - row["window_start"] == timedelta(seconds=seconds)
            assert row["trade_date"] == key[1].date()
            for field in ("open", "close", "high", "low", "trade_count"):
                assert row[field] == bar_[field], (timeframe, key, field)
            assert row["volume"] == pytest.approx(bar_["volume"])
            assert row["vwap"] == (pytest.approx(bar_["vwap"]) if bar_["vwap"] is not None else None), (timeframe, key)


def test_rollups_are_exact_repeatable_and_follow_corrections(lake_spark, spark_lake_settings):
    settings = spark_lake_settings
    minute_table = {t.name()[-1]: t for t in lake.ensure_tables(settings)}[settings.iceberg.bars_table]
    rows = minutes()
    append(minute_table, rows)
    window = (DAY1 + timedelta(hours=12), DAY1 + timedelta(days=1, hours=1))  # widened to the two whole days

    counts = rollup(lake_spark, settings, *window, list(TIMEFRAMES), [])
    assert counts == {tf: len(expected(rows, s)) for tf, s in TIMEFRAMES.items()}
    assert_matches(settings, rows)
    first = stored(settings, "1d")

    rollup(lake_spark, settings, *window, list(TIMEFRAMES), [])
    assert stored(settings, "1d") == first, "a second run changes no row, not even updated_at"

    # Corrections: AAPL's last minute of day 2 gets a new close; MSFT's day-2 minute is deleted.
    last = max((r for r in rows if r["symbol"] == "AAPL"), key=lambda r: r["window_start"])
    corrected = {**last, "close": 777.0, "high": 777.0}
    minute_table.overwrite(arrow(minute_table, [corrected]),
                           overwrite_filter=EqualTo("symbol", "AAPL") & EqualTo("window_start", last["window_start"].isoformat()))
    minute_table.delete(EqualTo("symbol", "MSFT") & EqualTo("trade_date", "2026-11-24"))
    rows = [corrected if r is last else r for r in rows if not (r["symbol"] == "MSFT" and r["trade_date"].day == 24)]

    rollup(lake_spark, settings, *window, list(TIMEFRAMES), [])
    assert_matches(settings, rows)
    daily = stored(settings, "1d")
    assert daily[("AAPL", DAY1)] == first[("AAPL", DAY1)], "an unchanged day keeps its row"
    assert daily[("AAPL", DAY1 + timedelta(days=1))]["close"] == 777.0
    assert ("MSFT", DAY1 + timedelta(days=1)) not in daily

    (newest,) = lake_query.read(settings, "bars", "AAPL", DAY1 + timedelta(days=1), DAY1 + timedelta(days=2),
                                timeframe="1d")
    assert newest.close == 777.0
