"""The bar and parsing transforms on small hand-made frames (local Spark, no services)."""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

import pytest

pytest.importorskip("pyspark")
from jobs import transforms  # noqa: E402
from jobs.bar_path import BarPath  # noqa: E402
from jobs.metrics import StreamMetrics  # noqa: E402
from jobs.bar_stores import COLUMNS, TIMES, state_of  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

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


def awkward_trades(spark, n=60, seed=7):
    """Trades of two symbols over three minutes, out of order, with equal times, twins and v = 0."""
    rng = random.Random(seed)
    values = []
    for _ in range(n):
        t = T0 + rng.choice([0, 1, 1, 59_999, 60_000, 61_000, 125_000])
        values.append(trade(rng.choice(["AAPL", "MSFT"]), rng.choice([9.0, 10.0, 11.0, 12.5]), t,
                            rng.choice([0.0, 1.0, 2.5])))
        if rng.random() < 0.1:
            values.append(values[-1])
    return transforms.valid_trades(transforms.decode(kafka_rows(spark, values)))


class MemoryBars:
    """A bar store in a dict, as ``BarBook`` sees Cassandra or the lake."""

    def __init__(self, bars=None):
        self.bars = dict(bars or {})
        self.loaded = []

    def load(self, keys):
        self.loaded.extend(keys)
        return {key: self.bars[key] for key in keys if key in self.bars}

    def write(self, bars):
        self.bars.update((bar.key, bar) for bar in bars)

    def close(self):
        pass


def states(bars):
    """1-minute bars (``MinuteBar`` columns) as ``BarState`` by key."""
    rows = bars.select(*(F.unix_micros(c).alias(c) if c in TIMES else c for c in COLUMNS)).collect()
    return {bar.key: bar for bar in (state_of(row.asDict()) for row in rows)}


def bar_values(bars: dict):
    def value(bar):
        return (bar.open, bar.high, bar.low, bar.close, round(bar.volume, 9), bar.trade_count,
                None if bar.vwap is None else round(bar.vwap, 9), bar.open_ts_us, bar.close_ts_us,
                bar.last_partition, bar.last_offset)
    return {key: value(bar) for key, bar in bars.items()}


def path_of(store):
    return BarPath("test", store, watermark_seconds=30, metrics=StreamMetrics())


def merged_in_batches(trades, cuts):
    """Bars after merging the trades batch by batch (split at the offsets ``cuts``) into a store."""
    store = MemoryBars()
    path = path_of(store)
    bounds = [0, *cuts, 10**9]
    for low, high in zip(bounds, bounds[1:]):
        path.merge(trades.where((F.col("kafka_offset") >= low) & (F.col("kafka_offset") < high)))
    return store.bars


def test_bars_merged_batch_by_batch_equal_bars_of_all_trades_at_once(spark):
    trades = awkward_trades(spark)
    expected = bar_values(states(transforms.one_minute_bars(trades)))
    for cuts in ([30], [1, 2, 3, 40], [10, 20, 50]):
        assert bar_values(merged_in_batches(trades, cuts)) == expected, cuts


def test_merging_a_batch_again_changes_no_bar(spark):
    """A replay after a crash: some bars already hold the batch (written before the crash),
    others do not; merging the batch again, with the bars read back from the store, gives every
    bar exactly once."""
    trades = awkward_trades(spark)
    full = bar_values(states(transforms.one_minute_bars(trades)))
    first, second = trades.where(F.col("kafka_offset") < 30), trades.where(F.col("kafka_offset") >= 30)
    store = MemoryBars(states(transforms.one_minute_bars(first)))
    # the crash: of the second batch's bars, only MSFT's reached the store
    before_crash = MemoryBars(store.bars)
    path_of(before_crash).merge(second)
    store.write([bar for key, bar in before_crash.bars.items() if key[0] == "MSFT"])
    path_of(store).merge(second)  # the restarted job: a new path, its bars read back from the store
    assert bar_values(store.bars) == full
    assert any(key[0] == "MSFT" for key in store.bars) and any(key[0] == "AAPL" for key in store.bars)


def test_bars_kept_by_the_book_need_no_store_read(spark):
    trades = awkward_trades(spark)
    store = MemoryBars()
    path = path_of(store)
    for low in range(0, 70, 10):
        path.merge(trades.where((F.col("kafka_offset") >= low) & (F.col("kafka_offset") < low + 10)))
    assert len(store.loaded) == len(set(store.loaded)) == len(store.bars)  # each bar read once, then kept
    assert bar_values(store.bars) == bar_values(states(transforms.one_minute_bars(trades)))


def test_a_late_trade_reaches_its_bar_and_an_earlier_one_becomes_the_open(spark):
    values = [trade("AAPL", 10.0, T0 + 5_000), trade("AAPL", 11.0, T0 + 9_000),  # batch 1
              trade("AAPL", 7.0, T0 + 1_000), trade("AAPL", 12.0, T0 + 9_000)]  # batch 2: earlier, equal-time close
    trades = transforms.valid_trades(transforms.decode(kafka_rows(spark, values)))
    store = MemoryBars(states(transforms.one_minute_bars(trades.where(F.col("kafka_offset") < 2))))
    path_of(store).merge(trades.where(F.col("kafka_offset") >= 2))
    (bar,) = store.bars.values()
    assert (bar.open, bar.high, bar.low, bar.close, bar.trade_count) == (7.0, 12.0, 7.0, 12.0, 4)
    assert bar.last_offset == 3 and bar.vwap == pytest.approx(40 / 4)
