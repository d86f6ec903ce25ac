"""Prometheus metrics of the streaming queries, fed from their progress by a thread of the driver."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# The phases of a micro-batch that Spark reports in its progress (``durationMs``).
PROGRESS_PHASES = ("latestOffset", "queryPlanning", "getBatch", "addBatch", "walCommit", "commitOffsets",
                   "triggerExecution")
PHASE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 40.0, 80.0)


class StreamMetrics:
    """The job's metrics; with ``journal``, every phase observation is also appended to that
    file as a JSON line (``{"at", "query", "phase", "seconds", "rows"}``), for benchmarks."""

    def __init__(self, registry: CollectorRegistry | None = None, journal: Path | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.journal = open(journal, "a", buffering=1) if journal else None
        self.journal_lock = threading.Lock()
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
            "ticklake_stream_late_rows_total",
            "Trades that reached a bar whose minute had passed the watermark (merged all the same)",
            labels, registry=r)
        self.quarantined_rows = Counter(
            "ticklake_stream_quarantined_rows_total", "Records refused and kept in the quarantine table",
            labels, registry=r)
        self.restarts = Counter(
            "ticklake_stream_restarts_total", "Restarts of the queries after a failure", registry=r)
        self.phase_seconds = Histogram(
            "ticklake_stream_phase_seconds",
            "Wall time of a micro-batch phase (Spark's progress phases, and the steps of the batch handler)",
            ["query", "phase"], buckets=PHASE_BUCKETS, registry=r)
        self.records_behind = Gauge(
            "ticklake_stream_records_behind_latest", "Kafka records not read yet by the query, after its last batch",
            labels, registry=r)
        self.newest_bar_time = Gauge(
            "ticklake_stream_newest_bar_time_seconds",
            "Event time (epoch seconds) of the newest trade in the bars the query wrote", labels, registry=r)
        self.trigger_seconds = Gauge(
            "ticklake_stream_trigger_seconds", "The query's trigger interval (0: as soon as data arrives)",
            labels, registry=r)

    def record_progress(self, progress: dict) -> None:
        """Update from a micro-batch's progress (``StreamingQuery.lastProgress``)."""
        query = progress.get("name") or str(progress["id"])
        rows, durations = progress.get("numInputRows", 0), progress.get("durationMs", {})
        self.batches.labels(query).inc()
        self.input_rows.labels(query).inc(rows)
        self.input_rate.labels(query).set(progress.get("inputRowsPerSecond") or 0.0)
        self.processed_rate.labels(query).set(progress.get("processedRowsPerSecond") or 0.0)
        self.batch_duration.labels(query).set(durations.get("triggerExecution", 0) / 1000)
        for phase in PROGRESS_PHASES:
            if phase in durations:
                self.observe_phase(query, phase, durations[phase] / 1000, rows)
        behind = records_behind(progress.get("sources", []))
        if behind is not None:
            self.records_behind.labels(query).set(behind)

    @contextmanager
    def timed(self, query: str, step: str) -> Iterator[None]:
        """Observe the wall time of one step of a batch handler as a phase of the query."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe_phase(query, step, time.perf_counter() - started)

    def observe_phase(self, query: str, phase: str, seconds: float, rows: int | None = None) -> None:
        self.phase_seconds.labels(query, phase).observe(seconds)
        if self.journal:
            line = json.dumps({"at": time.time(), "query": query, "phase": phase, "seconds": seconds, "rows": rows})
            with self.journal_lock:
                self.journal.write(line + "\n")

    def record_batch(self, query: str, trades: int, late: int = 0, watermark_us: int = 0,
                     newest_bar_us: int | None = None) -> None:
        """A micro-batch's valid and late trades, the query's watermark and the event time of the
        newest trade in the bars it wrote (epoch microseconds)."""
        self.trades.labels(query).inc(trades)
        self.late_rows.labels(query).inc(late)
        if watermark_us > 0:
            self.watermark_lag.labels(query).set(time.time() - watermark_us / 1e6)
        if newest_bar_us is not None:
            self.newest_bar_time.labels(query).set(newest_bar_us / 1e6)

    def serve(self, host: str, port: int) -> None:
        if port:
            start_http_server(port, addr=host, registry=self.registry)


def records_behind(sources: list[dict]) -> int | None:
    """Records between what the sources have read (``endOffset``) and the latest offsets
    Kafka reported (``latestOffset``), summed over topics and partitions."""
    total = None
    for source in sources:
        end, latest = source.get("endOffset"), source.get("latestOffset")
        if not isinstance(end, dict) or not isinstance(latest, dict):
            continue
        total = (total or 0) + sum(max(0, int(offset) - int(end.get(topic, {}).get(partition, offset)))
                                   for topic, partitions in latest.items() for partition, offset in partitions.items())
    return total


class ProgressPoller:
    """Records each new progress of the queries (their ``lastProgress``, a JSON document) every
    ``interval`` seconds, from a thread of its own.

    PySpark's StreamingQueryListener costs the driver tens of py4j calls per event, each class
    name a search of every jar: a fifth of a core at one batch a second (docs/BENCHMARKS.md)."""

    def __init__(self, metrics: StreamMetrics, queries, interval: float = 0.2) -> None:
        self.metrics, self.queries, self.interval = metrics, queries, interval
        self.seen: dict[str, int] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="progress-poller", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        for query in self.queries:
            try:
                progress = query.lastProgress
            except Exception:  # a query stopping or failing: the supervisor deals with it
                continue
            if not progress:
                continue
            last = self.seen.get(progress["id"], progress["batchId"] - 1)
            if progress["batchId"] <= last:
                continue
            # More than one batch since the last poll (short batches): the others from the history.
            missed = progress["batchId"] > last + 1
            for entry in query.recentProgress if missed else [progress]:
                if last < entry["batchId"] <= progress["batchId"] and entry["id"] == progress["id"]:
                    self.metrics.record_progress(entry)
            self.seen[progress["id"]] = progress["batchId"]

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self.poll()  # the last batches
