"""Streaming-query progress becomes Prometheus metrics."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from jobs.metrics import StreamMetrics


def progress(**overrides):
    base = dict(name="cassandra", id="q1", numInputRows=120, inputRowsPerSecond=60.0, processedRowsPerSecond=240.0,
                durationMs={"triggerExecution": 1500}, sources=[])
    return SimpleNamespace(**{**base, **overrides})


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
