"""Streaming job: Kafka trades -> raw trades and 1-minute OHLCV bars in Cassandra and Iceberg.

    ./spark-submit.sh jobs/ohlcv_stream.py [--available-now] [--trigger-seconds 5] [--lake-trigger-seconds 60]

Two queries share the session, each with its own checkpoint under the configured
checkpoint root, and each reads and parses every record once. ``cassandra`` runs at the
short trigger, so a bar is visible in Cassandra seconds after its trades; ``lake`` runs at
the lake trigger (default a minute), so Iceberg gets one commit a minute per table and files
worth keeping, not a trickle of small ones. Each micro-batch writes its raw trades and merges
them into the stored bars they fall in (``transforms.merge_into_bars``): the store holds the
bar state, so there is no Spark state store, a bar is upserted as it changes, and a late trade
still reaches its bar.

A failed query (a store down, say) stops the others; all restart from their checkpoints
after a capped backoff, so the job waits out an outage instead of dying.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.errors import StreamingQueryException
from pyspark.sql.streaming import StreamingQuery

from jobs import sinks, transforms
from jobs.metrics import MetricsListener, StreamMetrics
from jobs.session import build_session, iceberg_table
from ticklake.logs import configure_logging
from ticklake.config import Settings

log = logging.getLogger("ticklake.ohlcv_stream")


def kafka_source(spark: SparkSession, settings: Settings, args: argparse.Namespace) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("subscribe", settings.kafka.trades_topic)
        .option("startingOffsets", args.starting_offsets)
        .option("failOnDataLoss", "true")
    )
    if args.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
    return reader.load()


BatchHandler = Callable[[DataFrame, int, str], None]


def start_query(
    stream: DataFrame, name: str, handler: BatchHandler, settings: Settings, args: argparse.Namespace,
    trigger_seconds: float,
) -> StreamingQuery:
    """Start ``stream`` with ``handler(batch, batch_id, query_id)`` for each micro-batch.

    The query id is Spark's own, kept in the checkpoint: with the batch id it names a batch
    for good, so sinks can tell a replay from new data even after the checkpoint is replaced.
    """
    started = threading.Event()
    identity: dict[str, str] = {}

    def on_batch(batch: DataFrame, batch_id: int) -> None:
        started.wait()
        handler(batch, batch_id, identity["id"])

    writer = (
        stream.writeStream.queryName(name)
        .foreachBatch(on_batch)
        .option("checkpointLocation", str(settings.spark.checkpoint_root / name))
    )
    if args.available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{trigger_seconds} seconds")
    context = stream.sparkSession.sparkContext
    context.setLocalProperty("spark.scheduler.pool", name)  # the query's thread inherits it
    try:
        query = writer.start()
    finally:
        context.setLocalProperty("spark.scheduler.pool", None)
    identity["id"] = str(query.id)
    started.set()
    return query


class EventClock:
    """A query's event-time watermark: the latest trade time it has seen, less the allowed
    lateness. Trades older than it are counted as late; their bars take them all the same."""

    def __init__(self, lateness_seconds: float) -> None:
        self.lateness_us = int(lateness_seconds * 1_000_000)
        self.latest_us: int | None = None

    @property
    def watermark_us(self) -> int:
        return -2**63 if self.latest_us is None else self.latest_us - self.lateness_us

    def summarise(self, trades: DataFrame) -> Row:
        """``transforms.batch_summary`` of the batch, and the clock moved on past its trades."""
        summary = transforms.batch_summary(trades, self.watermark_us).first()
        if summary.trades:
            self.latest_us = max(self.latest_us or summary.last_us, summary.last_us)
        return summary


class BarMerger:
    """Merges each micro-batch's trades into the stored 1-minute bars of one store."""

    def __init__(self, query: str, settings: Settings, metrics: StreamMetrics) -> None:
        self.query, self.metrics = query, metrics
        self.clock = EventClock(settings.spark.watermark_seconds)

    def summarise(self, trades: DataFrame) -> Row:
        return self.clock.summarise(trades)

    @staticmethod
    def changed_bars(summary: Row, trades: DataFrame, stored: DataFrame) -> DataFrame:
        """The bars of ``stored`` that ``trades`` change, or new ones, with the trades merged in."""
        near = transforms.bars_between(stored, summary.symbols, summary.first_us, summary.last_us)
        return transforms.merge_into_bars(near, trades)

    def written(self, summary: Row) -> None:
        self.metrics.record_batch(self.query, summary.trades, summary.late, self.clock.watermark_us)


def cassandra_handler(settings: Settings, metrics: StreamMetrics) -> BatchHandler:
    """Merged bars and raw trades of a micro-batch into Cassandra, bars first (people watch them)."""
    cas = settings.cassandra
    merger = BarMerger("cassandra", settings, metrics)

    def handle(batch: DataFrame, batch_id: int, query_id: str) -> None:
        trades = transforms.valid_trades(batch).persist()
        try:
            summary = merger.summarise(trades)
            if summary.trades:
                stored = sinks.read_cassandra(batch.sparkSession, cas.keyspace, cas.bars_table)
                sinks.write_cassandra(merger.changed_bars(summary, trades, stored), cas.keyspace, cas.bars_table)
                sinks.write_cassandra(trades, cas.keyspace, cas.trades_table)
            merger.written(summary)
        finally:
            trades.unpersist()

    return handle


def lake_handler(lake: SparkSession, settings: Settings, metrics: StreamMetrics) -> BatchHandler:
    """Refused records, merged bars and raw trades of a micro-batch into Iceberg."""
    trades_table, bars_table, quarantine_table = (
        iceberg_table(settings, name) for name in
        (settings.iceberg.trades_table, settings.iceberg.bars_table, settings.iceberg.quarantine_table))
    merger = BarMerger("lake", settings, metrics)

    def handle(batch: DataFrame, batch_id: int, query_id: str) -> None:
        kept = transforms.raw_of_refused_only(batch).persist()
        try:
            quarantine(lake, kept, quarantine_table, query_id, batch_id, metrics)
            with sinks.shared_view(transforms.valid_trades(kept)) as view:
                trades = lake.table(view)
                summary = merger.summarise(trades)
                if summary.trades:
                    sinks.merge_bars_iceberg(lake, merger.changed_bars(summary, trades, lake.table(bars_table)),
                                             bars_table)
                    sinks.append_iceberg_once(lake, trades, trades_table, query_id, batch_id)
                merger.written(summary)
        finally:
            kept.unpersist()

    return handle


def quarantine(lake: SparkSession, decoded: DataFrame, table: str, query_id: str, batch_id: int,
               metrics: StreamMetrics) -> None:
    refused = transforms.quarantined(decoded).persist()
    try:
        count = refused.count()
        if count and sinks.append_iceberg_once(lake, refused, table, query_id, batch_id):
            metrics.quarantined_rows.labels("lake").inc(count)
            log.warning("batch %d: %d records quarantined in %s", batch_id, count, table)
    finally:
        refused.unpersist()


def start_queries(spark: SparkSession, settings: Settings, args: argparse.Namespace,
                  metrics: StreamMetrics) -> list[StreamingQuery]:
    decoded = transforms.decode(kafka_source(spark, settings, args))
    return [
        start_query(decoded, "cassandra", cassandra_handler(settings, metrics), settings, args, args.trigger_seconds),
        start_query(decoded, "lake", lake_handler(spark, settings, metrics), settings, args, args.lake_trigger_seconds),
    ]


def await_queries(spark: SparkSession, queries: list[StreamingQuery]) -> None:
    """Until every query has ended (``--available-now``) or one fails, which raises."""
    while any(query.isActive for query in queries):
        spark.streams.awaitAnyTermination()
        spark.streams.resetTerminated()


def run_supervised(spark: SparkSession, settings: Settings, args: argparse.Namespace, metrics: StreamMetrics) -> None:
    """Run the queries; when one fails, stop the rest and restart them all from their checkpoints
    after a backoff (doubling, capped), up to ``spark.max_restarts`` times in a row."""
    failures = 0
    while True:
        started = time.monotonic()
        queries = start_queries(spark, settings, args, metrics)
        log.info("started queries %s; checkpoints under %s", [q.name for q in queries],
                 settings.spark.checkpoint_root)
        try:
            await_queries(spark, queries)
            return
        except StreamingQueryException as error:
            for query in queries:
                query.stop()
            spark.streams.resetTerminated()
            if time.monotonic() - started > settings.spark.healthy_run_seconds:
                failures = 0
            failures += 1
            if failures > settings.spark.max_restarts:
                raise
            delay = min(settings.spark.restart_backoff_seconds * 2 ** (failures - 1),
                        settings.spark.max_restart_backoff_seconds)
            metrics.restarts.inc()
            log.error("a query failed (%s); restarting all queries from their checkpoints in %.0f s (%d/%d)",
                      str(error).splitlines()[0][:500], delay, failures, settings.spark.max_restarts)
            time.sleep(delay)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--available-now", action="store_true",
                        help="process everything in Kafka now, then exit (backfills, tests)")
    parser.add_argument("--trigger-seconds", type=float, default=None,
                        help="micro-batch interval (default: spark.trigger_seconds setting)")
    parser.add_argument("--lake-trigger-seconds", type=float, default=None,
                        help="interval of the Iceberg commits (default: spark.lake_trigger_seconds setting)")
    parser.add_argument("--starting-offsets", default="earliest",
                        help="Kafka offsets for a query without a checkpoint: earliest or latest")
    parser.add_argument("--max-offsets-per-trigger", type=int, default=None,
                        help="cap on the Kafka records a micro-batch reads (default: all available)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings()
    if args.trigger_seconds is None:
        args.trigger_seconds = settings.spark.trigger_seconds
    if args.lake_trigger_seconds is None:
        args.lake_trigger_seconds = settings.spark.lake_trigger_seconds
    spark = build_session(settings, "ticklake-ohlcv-stream")
    spark.sparkContext.setLogLevel("WARN")
    metrics = StreamMetrics()
    metrics.serve(settings.spark.metrics_port)
    listener = MetricsListener(metrics)
    spark.streams.addListener(listener)
    try:
        run_supervised(spark, settings, args, metrics)
    finally:
        # Detach the Python listener before the gateway closes, or the JVM reports
        # the terminated queries to a Python process that is gone.
        spark.streams.removeListener(listener)
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
