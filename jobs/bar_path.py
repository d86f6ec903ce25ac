"""A streaming query's 1-minute bars: Spark aggregates a micro-batch into deltas, the driver
merges them into the bars it keeps (``bar_state.BarBook``) and writes the changed ones."""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame

from pyspark.sql import types as T

from jobs import sinks, transforms
from jobs.bar_state import MINUTE_US, BarBook, BarDelta, BarState, BarStore, as_datetime
from jobs.metrics import StreamMetrics

log = logging.getLogger("ticklake.bar_path")
MARKS = T.StructType([T.StructField("symbol", T.StringType()), T.StructField("window_start", T.TimestampType()),
                      T.StructField("last_kafka_partition", T.LongType()),
                      T.StructField("last_kafka_offset", T.LongType())])


class EventClock:
    """A query's event-time watermark: the latest trade time it has seen, less the allowed
    lateness. Trades that reach a bar whose minute ended before it are counted as late; their bars
    take them all the same."""

    def __init__(self, lateness_seconds: float) -> None:
        self.lateness_us = int(lateness_seconds * 1_000_000)
        self.latest_us: int | None = None

    @property
    def watermark_us(self) -> int:
        return -2**63 if self.latest_us is None else self.latest_us - self.lateness_us

    def advance(self, latest_us: int) -> None:
        self.latest_us = latest_us if self.latest_us is None else max(self.latest_us, latest_us)


class BarPath:
    """A query's 1-minute bars: each micro-batch's trades aggregated by Spark into deltas,
    merged by the driver into the bars it keeps, the changed bars written to ``store``."""

    def __init__(self, query: str, store: BarStore, watermark_seconds: int, metrics: StreamMetrics) -> None:
        self.query, self.store, self.metrics = query, store, metrics
        self.clock = EventClock(watermark_seconds)
        self.book = BarBook(store, keep_minutes=watermark_seconds // 60 + 2)

    def merge(self, trades: DataFrame) -> int:
        """Merge the batch's trades into their bars; returns how many trades it had."""
        with self.metrics.timed(self.query, "aggregate"):
            deltas = [BarDelta(**row.asDict()) for row in transforms.bar_deltas(trades).collect()]
        if not deltas:
            return 0
        # Late: trades that reached a bar whose minute had passed the watermark before this batch.
        late = sum(d.trade_count for d in deltas if d.window_start_us + MINUTE_US <= self.clock.watermark_us)
        with self.metrics.timed(self.query, "write_bars"):
            self.book.apply(deltas, lambda stale: self.refined(trades, stale))
        newest = max(d.close_ts_us for d in deltas)
        self.clock.advance(newest)
        count = sum(d.trade_count for d in deltas)
        self.metrics.record_batch(self.query, count, late, self.clock.watermark_us, newest)
        return count

    def refined(self, trades: DataFrame, stale: list[BarState]) -> list[BarDelta]:
        """The deltas of the stale bars again, from the trades they do not hold yet."""
        log.info("%s: %d bars already hold trades of this batch (a replay); merging only the rest",
                 self.query, len(stale))
        marks = sinks.literal_frame(trades.sparkSession, MARKS, [
            {"symbol": bar.symbol, "window_start": as_datetime(bar.window_start_us),
             "last_kafka_partition": bar.last_partition, "last_kafka_offset": bar.last_offset} for bar in stale])
        keys = {bar.key for bar in stale}
        rows = transforms.bar_deltas(transforms.trades_after(trades, marks)).collect()
        return [delta for delta in (BarDelta(**row.asDict()) for row in rows) if delta.key in keys]

    def close(self) -> None:
        self.store.close()
