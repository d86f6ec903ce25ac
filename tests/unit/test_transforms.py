"""The bar and parsing transforms on small hand-made frames (local Spark, no services)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

pytest.importorskip("pyspark")
from jobs import transforms  # noqa: E402

T0 = 1_700_000_040_000  # 2023-11-14T22:14:00Z, a minute boundary


def kafka_rows(spark, values, partition=0):
    def value(v) -> bytes:
        return v if isinstance(v, bytes) else v.encode() if isinstance(v, str) else json.dumps(v).encode()

    rows = [(None, value(v), "t", partition, offset)
            for offset, v in enumerate(values)]
    return spark.createDataFrame(rows, "key binary, value binary, topic string, partition int, offset long")


def trade(symbol, price, t_ms, volume=1.0):
    return {"symbol": symbol, "price": price, "volume": volume, "trade_time_ms": t_ms,
            "exchange": "US", "received_time_ms": t_ms + 5, "conditions": ["1"]}


def test_valid_and_rejected_are_split_with_reasons(spark):
    decoded = transforms.decode(kafka_rows(spark, [
        trade("AAPL", 10.0, T0), "not json", trade("AAPL", -1.0, T0), trade("", 1.0, T0),
        {"symbol": "AAPL"}, trade("AAPL", float("nan"), T0), trade("AAPL", 0.0, T0),
        trade("AAPL", 1.0, T0, volume=-2), trade("AAPL", 1.0, 10**17), trade("AAPL", 1.0, 2**62), b"\xff\xfe",
        [trade("AAPL", 1.0, T0)], {**trade("AAPL", 1.0, T0), "price": "1.0"}, b"",
    ]))
    assert transforms.valid_trades(decoded).count() == 1
    quarantined = transforms.quarantined(decoded).orderBy("kafka_offset").collect()
    reasons = [r.reason for r in quarantined]
    assert reasons == ["malformed", "bad_price", "empty_symbol", "missing_field",
                       "malformed",  # NaN is not JSON
                       "bad_price", "bad_volume", "bad_time", "bad_time",  # beyond year 9999
                       "malformed",  # not UTF-8
                       "malformed", "malformed", "malformed"]  # an array, a string price, empty
    assert quarantined[0].raw == "not json" and quarantined[0].topic == "t"
    assert quarantined[-4].raw == "\ufffd\ufffd"  # not UTF-8: kept, as readable text


def test_trade_row_fields(spark):
    row = transforms.valid_trades(transforms.decode(kafka_rows(spark, [trade("AAPL", 10.5, T0 + 1234)], 3))).first()
    assert row.trade_ts == datetime.fromtimestamp((T0 + 1234) / 1000, timezone.utc).replace(tzinfo=None)
    assert (row.trade_year, row.trade_month, row.trade_day) == (2023, 11, 14)
    assert (row.kafka_partition, row.kafka_offset) == (3, 0)


def test_bar_open_close_break_equal_time_ties_by_arrival(spark):
    values = [
        trade("AAPL", 11.0, T0 + 500),           # offset 0
        trade("AAPL", 10.0, T0 + 100),           # offset 1: earliest time -> open
        trade("AAPL", 12.0, T0 + 100),           # offset 2: same time, arrived later
        trade("AAPL", 9.0, T0 + 59_999, 0.0),    # offset 3: v=0 price update, latest time
        trade("AAPL", 13.0, T0 + 59_999, 2.0),   # offset 4: same latest time, arrived last -> close
        trade("AAPL", 50.0, T0 + 60_000),        # next minute
    ]
    bars = transforms.one_minute_bars(transforms.valid_trades(transforms.decode(kafka_rows(spark, values))))
    first, second = bars.orderBy("window_start").collect()
    assert (first.open, first.high, first.low, first.close) == (10.0, 13.0, 9.0, 13.0)
    assert first.trade_count == 5 and first.volume == 5.0
    assert first.vwap == pytest.approx((11 + 10 + 12 + 0 + 26) / 5)
    assert first.window_end.timestamp() - first.window_start.timestamp() == 60
    assert (second.open, second.close, second.trade_count) == (50.0, 50.0, 1)


def test_identical_trades_both_count_and_zero_volume_bar_has_no_vwap(spark):
    values = [trade("X", 5.0, T0, 0.0), trade("X", 5.0, T0, 0.0)]
    (bar,) = transforms.one_minute_bars(transforms.valid_trades(transforms.decode(kafka_rows(spark, values)))).collect()
    assert bar.trade_count == 2 and bar.volume == 0.0 and bar.vwap is None
