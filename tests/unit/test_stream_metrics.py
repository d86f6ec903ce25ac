"""Streaming-query progress becomes Prometheus metrics."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from jobs.metrics import ProgressPoller, StreamMetrics, records_behind


def progress(**overrides):
    base = dict(name="cassandra", id="q1", batchId=0, numInputRows=120, inputRowsPerSecond=60.0,
                processedRowsPerSecond=240.0, durationMs={"triggerExecution": 1500}, sources=[])
    return {**base, **overrides}


def value(metrics: StreamMetrics, name: str, query: str = "cassandra") -> float:
    return metrics.registry.get_sample_value(name, {"query": query})


def test_progress_updates_rows_rates_and_durations():
    metrics = StreamMetrics()
    metrics.record_progress(progress())
    metrics.record_progress(progress(numInputRows=30))
    assert value(metrics, "ticklake_stream_input_rows_total") == 150
    assert value(metrics, "ticklake_stream_batches_total") == 2
    assert value(metrics, "ticklake_stream_batch_duration_seconds") == 1.5
    assert value(metrics, "ticklake_stream_processed_rows_per_second") == 240.0


def test_batches_count_trades_and_late_trades_and_set_the_watermark_lag():
    metrics = StreamMetrics()
    hour_ago_us = int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp() * 1e6)
    metrics.record_batch("lake", 100, 3, hour_ago_us)
    metrics.record_batch("lake", 50, 0, hour_ago_us)
    assert value(metrics, "ticklake_stream_trades_total", "lake") == 150
    assert value(metrics, "ticklake_stream_late_rows_total", "lake") == 3
    assert 3590 < value(metrics, "ticklake_stream_watermark_lag_seconds", "lake") < 3700


def test_no_watermark_before_the_first_trade():
    metrics = StreamMetrics()
    metrics.record_progress(progress(name="raw", inputRowsPerSecond=None))
    metrics.record_batch("raw", 0, 0, -2**63)
    assert value(metrics, "ticklake_stream_input_rows_per_second", "raw") == 0.0
    assert value(metrics, "ticklake_stream_watermark_lag_seconds", "raw") is None


def test_records_behind_sums_the_partitions_that_kafka_has_further():
    source = {"endOffset": {"trades": {"0": 10, "1": 5}}, "latestOffset": {"trades": {"0": 25, "1": 5, "2": 4}}}
    assert records_behind([source]) == 15 + 0 + 0, "a partition the query has not read yet counts from its end"
    assert records_behind([{"endOffset": None, "latestOffset": None}]) is None


class FakeQuery:
    """A query whose history of progress grows as the test says."""

    def __init__(self) -> None:
        self.history: list[dict] = []

    def run(self, rows: int) -> None:
        self.history.append(progress(batchId=len(self.history), numInputRows=rows))

    @property
    def lastProgress(self):
        return self.history[-1] if self.history else None

    @property
    def recentProgress(self):
        return list(self.history)


def test_the_poller_records_each_batch_once_also_those_between_two_polls():
    metrics, query = StreamMetrics(), FakeQuery()
    poller = ProgressPoller(metrics, [query], interval=3600)
    poller.poll()  # nothing yet
    query.run(10)
    poller.poll()
    poller.poll()  # the same batch again
    for rows in (20, 30, 40):  # three batches between two polls
        query.run(rows)
    poller.stop()
    assert value(metrics, "ticklake_stream_batches_total") == 4
    assert value(metrics, "ticklake_stream_input_rows_total") == 100
