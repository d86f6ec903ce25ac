"""The rollup transform on small hand-made 1-minute bars (local Spark, no services)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

pytest.importorskip("pyspark")
from jobs.rollup import roll_up  # noqa: E402
from schemas.derive import spark_schema  # noqa: E402
from schemas.models import Bar  # noqa: E402

T = datetime(2026, 11, 23, 9, 30)  # naive = UTC (the session's zone)


def minute(spark, rows):
    """1-minute bars from (symbol, minute offset from T, open, high, low, close, volume, trade_count, vwap)."""
    bars = []
    for symbol, offset, o, h, l, c, v, n, vwap in rows:
        start = T + timedelta(minutes=offset)
        bars.append((symbol, start.date(), start, start + timedelta(minutes=1), o, h, l, c, v, n, vwap, T))
    return spark.createDataFrame(bars, spark_schema(Bar))


def rolled(spark, rows, seconds):
    return [r.asDict() for r in roll_up(minute(spark, rows), seconds).orderBy("symbol", "window_start").collect()]


def test_five_minute_bar_takes_open_and_close_by_time_not_row_order(spark):
    rows = [
        ("AAPL", 3, 12.0, 14.0, 11.0, 13.5, 2.0, 4, 12.5),  # latest minute, given first -> close
        ("AAPL", 0, 10.0, 11.0, 9.0, 10.5, 1.0, 2, 10.2),   # earliest minute -> open
        ("AAPL", 1, 10.5, 15.0, 10.0, 11.0, 3.0, 5, 12.0),
    ]
    (bar,) = rolled(spark, rows, 300)
    assert bar["window_start"] == T and bar["window_end"] == T + timedelta(minutes=5)
    assert bar["trade_date"] == date(2026, 11, 23)
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (10.0, 15.0, 9.0, 13.5)
    assert bar["volume"] == 6.0 and bar["trade_count"] == 11
    assert bar["vwap"] == pytest.approx((12.5 * 2 + 10.2 * 1 + 12.0 * 3) / 6)


def test_windows_without_minutes_have_no_bar_and_symbols_stay_apart(spark):
    rows = [("AAPL", 0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, 1.0), ("AAPL", 12, 2.0, 2.0, 2.0, 2.0, 1.0, 1, 2.0),
            ("MSFT", 1, 5.0, 5.0, 5.0, 5.0, 1.0, 1, 5.0)]
    bars = rolled(spark, rows, 300)
    assert [(b["symbol"], b["window_start"], b["close"]) for b in bars] == [
        ("AAPL", T, 1.0), ("AAPL", T + timedelta(minutes=10), 2.0), ("MSFT", T, 5.0)]


def test_zero_volume_minutes_weigh_nothing_and_an_all_zero_bar_has_no_vwap(spark):
    rows = [("X", 0, 5.0, 5.0, 5.0, 5.0, 0.0, 2, None), ("X", 1, 6.0, 6.0, 6.0, 6.0, 4.0, 1, 6.0),
            ("Y", 0, 5.0, 5.0, 5.0, 5.0, 0.0, 3, None)]
    x, y = rolled(spark, rows, 300)
    assert x["vwap"] == 6.0 and x["volume"] == 4.0 and x["trade_count"] == 3
    assert y["vwap"] is None and y["volume"] == 0.0 and y["trade_count"] == 3


def test_daily_and_hourly_bars_are_utc_days_and_hours(spark):
    # T + 869 min = 23:59 on the 23rd; T + 870 = 00:00 on the 24th.
    rows = [("X", 869, 1.0, 3.0, 0.5, 2.0, 1.0, 1, 2.0), ("X", 870, 4.0, 4.0, 4.0, 4.0, 1.0, 1, 4.0),
            ("X", 0, 9.0, 9.0, 9.0, 9.0, 1.0, 1, 9.0)]
    day1, day2 = rolled(spark, rows, 86400)
    assert (day1["window_start"], day1["window_end"]) == (datetime(2026, 11, 23), datetime(2026, 11, 24))
    assert (day1["open"], day1["close"], day1["high"], day1["low"]) == (9.0, 2.0, 9.0, 0.5)
    assert day2["trade_date"] == date(2026, 11, 24) and day2["open"] == 4.0
    hours = rolled(spark, rows, 3600)
    assert [h["window_start"].hour for h in hours] == [9, 23, 0]


def test_output_has_the_bar_schema(spark):
    out = roll_up(minute(spark, [("X", 0, 1.0, 1.0, 1.0, 1.0, 1.0, 1, 1.0)]), 300)
    assert [(f.name, f.dataType) for f in out.schema.fields] == [(f.name, f.dataType) for f in spark_schema(Bar).fields]
