"""Small frames from the driver's rows, as the streaming job writes its bars (local Spark)."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

pytest.importorskip("pyspark")
from pyspark.sql import functions as F  # noqa: E402

from jobs.bar_state import epoch_us  # noqa: E402
from jobs.sinks import literal_frame  # noqa: E402
from schemas.derive import spark_schema  # noqa: E402
from schemas.models import MinuteBar  # noqa: E402


def test_literal_frame_keeps_every_value_exactly(spark):
    start = datetime(2026, 12, 1, 21, 7, tzinfo=timezone.utc)
    rows = [
        {"symbol": "BINANCE:BTC'USDT\\x", "trade_date": date(2026, 12, 1), "window_start": start,
         "window_end": start.replace(minute=8), "open": 0.1 + 0.2, "high": 1e-300, "low": 5e-324,
         "close": 123456789.123456789, "volume": 0.0, "trade_count": 2**40, "vwap": None,
         "updated_at": start.replace(microsecond=123456), "open_ts": start.replace(second=1, microsecond=1),
         "close_ts": None, "last_kafka_partition": 3, "last_kafka_offset": 2**62},
        {**{name: None for name in MinuteBar.model_fields}, "symbol": "", "trade_count": 0},
    ]
    frame = literal_frame(spark, spark_schema(MinuteBar), rows)
    assert [(f.name, f.dataType) for f in frame.schema] == [(f.name, f.dataType) for f in spark_schema(MinuteBar)]
    times = ("window_start", "window_end", "updated_at", "open_ts", "close_ts")
    got = [row.asDict() for row in frame.select(
        *(F.unix_micros(c).alias(c) if c in times else c for c in frame.columns)).collect()]
    for row, want in zip(got, rows):
        for name, value in want.items():
            expected = epoch_us(value) if name in times and value is not None else value
            assert row[name] == expected, name
