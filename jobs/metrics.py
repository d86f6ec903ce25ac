"""Prometheus metrics of the streaming queries, fed by a StreamingQueryListener in the driver."""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from pyspark.sql.streaming import StreamingQueryListener


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["query"]
        r = self.registry
        self.input_rows = Counter("ticklake_stream_input_rows_total", "Rows read by the query", labels, registry=r)
        self.batches = Counter("ticklake_stream_batches_total", "Micro-batches completed", labels, registry=r)
        self.input_rate = Gauge("ticklake_stream_input_rows_per_second", "Input rate of the last batch", labels, registry=r)
        self.processed_rate = Gauge(
            "ticklake_stream_processed_rows_per_second", "Processing rate of the last batch", labels, registry=r)
        self.batch_duration = Gauge(
            "ticklake_stream_batch_duration_seconds", "Wall time of the last batch", labels, registry=r)
        self.watermark_lag = Gauge(
            "ticklake_stream_watermark_lag_seconds", "Wall time minus the event-time watermark", labels, registry=r)
        self.trades = Counter("ticklake_stream_trades_total", "Valid trades written", labels, registry=r)
        self.late_rows = Counter(
            "ticklake_stream_late_rows_total", "Trades older than the watermark (merged into their bars all the same)",
            labels, registry=r)
        self.quarantined_rows = Counter(
            "ticklake_stream_quarantined_rows_total", "Records refused and kept in the quarantine table",
            labels, registry=r)
        self.restarts = Counter(
            "ticklake_stream_restarts_total", "Restarts of the queries after a failure", registry=r)

    def record_progress(self, progress) -> None:
        """Update from a ``StreamingQueryProgress`` (the listener's event.progress)."""
        query = progress.name or str(progress.id)
        self.batches.labels(query).inc()
        self.input_rows.labels(query).inc(progress.numInputRows)
        self.input_rate.labels(query).set(progress.inputRowsPerSecond or 0.0)
        self.processed_rate.labels(query).set(progress.processedRowsPerSecond or 0.0)
        self.batch_duration.labels(query).set(progress.durationMs.get("triggerExecution", 0) / 1000)

    def record_batch(self, query: str, trades: int, late: int, watermark_us: int) -> None:
        """A micro-batch's valid and late trades, and the query's watermark (epoch microseconds)."""
        self.trades.labels(query).inc(trades)
        self.late_rows.labels(query).inc(late)
        if watermark_us > 0:
            self.watermark_lag.labels(query).set(time.time() - watermark_us / 1e6)

    def serve(self, port: int) -> None:
        if port:
            start_http_server(port, registry=self.registry)


class MetricsListener(StreamingQueryListener):
    def __init__(self, metrics: StreamMetrics) -> None:
        self.metrics = metrics

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        self.metrics.record_progress(event.progress)

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass
