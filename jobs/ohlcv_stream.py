"""Streaming job: Kafka trades -> raw trades and 1-minute OHLCV bars in Cassandra and Iceberg.

    ./spark-submit.sh jobs/ohlcv_stream.py [--available-now] [--trigger-seconds 5] [--lake-trigger-seconds 60]

Four queries share the session, each with its own checkpoint under the configured
checkpoint root. ``raw-cassandra`` and ``bars-cassandra`` run at the short trigger, so a
bar is visible in Cassandra seconds after its trades; ``raw-lake`` and ``bars-lake`` run
at the lake trigger (default a minute), so Iceberg gets one commit a minute per table and
files worth keeping, not a trickle of small ones. The bars queries keep the per-minute state
(event time, watermark) and upsert each bar as it changes (update mode).

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

from pyspark.sql import DataFrame, SparkSession
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
    trigger_seconds: float, output_mode: str = "append",
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
        .outputMode(output_mode)
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


def start_raw_queries(lake: SparkSession, decoded: DataFrame, settings: Settings, args: argparse.Namespace,
                      metrics: StreamMetrics) -> list[StreamingQuery]:
    cas = settings.cassandra
    trades_table = iceberg_table(settings, settings.iceberg.trades_table)
    quarantine_table = iceberg_table(settings, settings.iceberg.quarantine_table)

    def to_cassandra(batch: DataFrame, batch_id: int, query_id: str) -> None:
        sinks.write_cassandra(transforms.valid_trades(batch), cas.keyspace, cas.trades_table)

    def to_lake(batch: DataFrame, batch_id: int, query_id: str) -> None:
        batch.persist()
        sinks.append_iceberg_once(lake, transforms.valid_trades(batch), trades_table, query_id, batch_id)
        quarantined = transforms.quarantined(batch).persist()
        refused = quarantined.count()
        if refused and sinks.append_iceberg_once(lake, quarantined, quarantine_table, query_id, batch_id):
            metrics.quarantined_rows.labels("raw-lake").inc(refused)
            log.warning("batch %d: %d records quarantined in %s", batch_id, refused, quarantine_table)
        quarantined.unpersist()
        batch.unpersist()

    return [
        start_query(decoded, "raw-cassandra", to_cassandra, settings, args, args.trigger_seconds),
        start_query(decoded, "raw-lake", to_lake, settings, args, args.lake_trigger_seconds),
    ]


def start_bars_queries(lake: SparkSession, decoded: DataFrame, settings: Settings,
                       args: argparse.Namespace) -> list[StreamingQuery]:
    cas = settings.cassandra
    table = iceberg_table(settings, settings.iceberg.bars_table)
    trades = transforms.valid_trades(decoded).withWatermark(
        "trade_ts", f"{settings.spark.watermark_seconds} seconds"
    )
    bars = transforms.one_minute_bars(trades)

    def to_cassandra(changed: DataFrame, batch_id: int, query_id: str) -> None:
        sinks.write_cassandra(changed, cas.keyspace, cas.bars_table)

    def to_lake(changed: DataFrame, batch_id: int, query_id: str) -> None:
        sinks.merge_bars_iceberg(lake, changed, table)

    return [
        start_query(bars, "bars-cassandra", to_cassandra, settings, args, args.trigger_seconds, "update"),
        start_query(bars, "bars-lake", to_lake, settings, args, args.lake_trigger_seconds, "update"),
    ]


def start_queries(spark: SparkSession, settings: Settings, args: argparse.Namespace,
                  metrics: StreamMetrics) -> list[StreamingQuery]:
    decoded = transforms.decode(kafka_source(spark, settings, args))
    return start_raw_queries(spark, decoded, settings, args, metrics) + start_bars_queries(spark, decoded, settings, args)


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
