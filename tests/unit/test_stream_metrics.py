"""Streaming-query progress becomes Prometheus metrics."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from jobs.metrics import StreamMetrics


def hour_ago() -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def progress(**overrides):
    base = dict(
        name="bars", id="q1", numInputRows=120, inputRowsPerSecond=60.0, processedRowsPerSecond=240.0,
        durationMs={"triggerExecution": 1500}, eventTime={"watermark": hour_ago()},
        stateOperators=[SimpleNamespace(numRowsTotal=7, numRowsDroppedByWatermark=3)],
    )
    return SimpleNamespace(**{**base, **overrides})


def value(metrics: StreamMetrics, name: str, query: str = "bars") -> float:
    return metrics.registry.get_sample_value(name, {"query": query})


def test_progress_updates_rates_state_and_late_rows():
    metrics = StreamMetrics()
    metrics.record_progress(progress())
    metrics.record_progress(progress(numInputRows=30))
    assert value(metrics, "ticklake_stream_input_rows_total") == 150
    assert value(metrics, "ticklake_stream_batches_total") == 2
    assert value(metrics, "ticklake_stream_batch_duration_seconds") == 1.5
    assert value(metrics, "ticklake_stream_state_rows") == 7
    assert value(metrics, "ticklake_stream_late_rows_total") == 6
    assert 3590 < value(metrics, "ticklake_stream_watermark_lag_seconds") < 3700


def test_query_without_watermark_or_state():
    metrics = StreamMetrics()
    metrics.record_progress(progress(name="raw", eventTime={}, stateOperators=[], inputRowsPerSecond=None))
    assert value(metrics, "ticklake_stream_input_rate", "raw") is None
    assert value(metrics, "ticklake_stream_input_rows_per_second", "raw") == 0.0
    assert value(metrics, "ticklake_stream_watermark_lag_seconds", "raw") is None
