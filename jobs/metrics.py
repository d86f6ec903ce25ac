"""Prometheus metrics of the streaming queries, fed by a StreamingQueryListener in the driver."""
from __future__ import annotations

import time
from datetime import datetime

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
        self.state_rows = Gauge("ticklake_stream_state_rows", "Rows held in the aggregation state", labels, registry=r)
        self.late_rows = Counter(
            "ticklake_stream_late_rows_total", "Rows dropped from the aggregation as later than the watermark",
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
        watermark = (progress.eventTime or {}).get("watermark")
        if watermark:
            seen = datetime.fromisoformat(watermark.replace("Z", "+00:00")).timestamp()
            if seen > 0:
                self.watermark_lag.labels(query).set(time.time() - seen)
        operators = progress.stateOperators or []
        self.state_rows.labels(query).set(sum(op.numRowsTotal for op in operators))
        late = sum(op.numRowsDroppedByWatermark for op in operators)
        if late:
            self.late_rows.labels(query).inc(late)

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
