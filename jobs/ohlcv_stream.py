"""Streaming job: Kafka trades -> 1-minute OHLCV bars and raw trades in Cassandra and Iceberg.

    ./spark-submit.sh jobs/ohlcv_stream.py [--available-now] [--bars-trigger-seconds 1]
        [--trigger-seconds 5] [--lake-trigger-seconds 60] [--queries bars,trades,lake]

Three queries, each with its own checkpoint under the configured checkpoint root, so none can
hold another back. They share one application by default; ``--queries`` runs a part of them,
so that the bars can have an application (a JVM) of their own, which the operating system
schedules before the stores' one (``ticklake stream``: docs/ARCHITECTURE.md):
- ``bars`` (short trigger) aggregates its trades into one delta per symbol and minute in a
  single Spark task, and the driver merges the deltas into the bars it keeps
  (``bar_state.BarBook``) and writes the changed bars to Cassandra itself: no store read, no
  connector, a few rows per batch.
- ``trades`` writes the raw trades to Cassandra.
- ``lake`` (default a minute) appends the raw trades and refused records to Iceberg and merges
  its bars the same way as ``bars``: one commit a minute per table, files worth keeping.

A failed query (a store down, say) stops the others of its application; all restart from their
checkpoints after a capped backoff, so the job waits out an outage instead of dying.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.errors import StreamingQueryException
from pyspark.sql.streaming import StreamingQuery

from jobs import sinks, transforms
from jobs.bar_path import BarPath
from jobs.bar_stores import CassandraBars, IcebergBars
from jobs.job import run_job
from jobs.metrics import ProgressPoller, StreamMetrics
from jobs.session import iceberg_table
from ticklake.backoff import backoff_seconds
from ticklake.config import Settings
from ticklake.security import spark_kafka_options

log = logging.getLogger("ticklake.ohlcv_stream")
QUERIES = ("bars", "trades", "lake")


def kafka_source(spark: SparkSession, settings: Settings, args: StreamOptions) -> DataFrame:
    reader = (
        spark.readStream.format("kafka")
        .options(**spark_kafka_options(settings))  # addresses, and with security TLS and SCRAM
        .option("subscribe", settings.kafka.trades_topic)
        .option("startingOffsets", args.starting_offsets)
        .option("failOnDataLoss", "true")
        .option("kafka.fetch.max.wait.ms", str(settings.spark.kafka_fetch_max_wait_ms))
    )
    if args.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(args.max_offsets_per_trigger))
    return reader.load()


def start_query(
    stream: DataFrame, name: str, handler: Handler, settings: Settings, args: StreamOptions,
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


class Handler:
    """A query's micro-batch handler; ``close`` frees what it holds when the query stops."""

    def __call__(self, batch: DataFrame, batch_id: int, query_id: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class BarsHandler(Handler):
    """Bars into Cassandra: Spark aggregates the batch (in one task when ``one_task``: a second's
    trades are fewer than a task's start-up is worth), the driver writes the bars."""

    def __init__(self, settings: Settings, metrics: StreamMetrics, one_task: bool) -> None:
        self.path = BarPath("bars", CassandraBars(settings), settings.spark.watermark_seconds, metrics)
        self.one_task = one_task

    def __call__(self, batch: DataFrame, batch_id: int, query_id: str) -> None:
        self.path.merge(batch.coalesce(1) if self.one_task else batch)

    def close(self) -> None:
        self.path.close()


class TradesHandler(Handler):
    """Raw trades into Cassandra (upserts keyed by their Kafka position)."""

    def __init__(self, settings: Settings, metrics: StreamMetrics) -> None:
        self.settings, self.metrics = settings, metrics

    def __call__(self, batch: DataFrame, batch_id: int, query_id: str) -> None:
        cas = self.settings.cassandra
        with self.metrics.timed("trades", "write_trades"):
            sinks.write_cassandra(batch, cas.keyspace, cas.trades_table)


class LakeHandler(Handler):
    """Refused records, bars and raw trades of a micro-batch into Iceberg."""

    def __init__(self, lake: SparkSession, settings: Settings, metrics: StreamMetrics) -> None:
        self.lake, self.metrics = lake, metrics
        ice = settings.iceberg
        self.trades_table, self.quarantine_table = (
            iceberg_table(settings, name) for name in (ice.trades_table, ice.quarantine_table))
        self.path = BarPath("lake", IcebergBars(lake, iceberg_table(settings, ice.bars_table)),
                            settings.spark.watermark_seconds, metrics)

    def __call__(self, batch: DataFrame, batch_id: int, query_id: str) -> None:
        kept = transforms.raw_of_refused_only(batch).persist()
        try:
            with self.metrics.timed("lake", "quarantine"):
                quarantine(self.lake, kept, self.quarantine_table, query_id, batch_id, self.metrics)
            with sinks.shared_view(transforms.valid_trades(kept)) as view:
                trades = self.lake.table(view)
                if self.path.merge(trades):
                    with self.metrics.timed("lake", "append_trades"):
                        sinks.append_iceberg_once(self.lake, trades, self.trades_table, query_id, batch_id)
        finally:
            kept.unpersist()


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


def start_queries(spark: SparkSession, settings: Settings, args: StreamOptions,
                  metrics: StreamMetrics) -> list[tuple[StreamingQuery, Handler]]:
    """The queries of ``args.queries`` with their handlers, the bars first."""
    # The bars and the raw trades take valid trades only: filtered in the streaming plan, which
    # Spark analyses once, not in each batch's handler.
    decoded = transforms.decode(kafka_source(spark, settings, args))
    valid = transforms.valid_trades(decoded)
    paths = {"bars": (valid, lambda: BarsHandler(settings, metrics, one_task=not args.available_now),
                      args.bars_trigger_seconds),
             "trades": (valid, lambda: TradesHandler(settings, metrics), args.trigger_seconds),
             "lake": (decoded, lambda: LakeHandler(spark, settings, metrics), args.lake_trigger_seconds)}
    started = []
    for name in args.queries:
        stream, make_handler, trigger = paths[name]
        handler = make_handler()
        metrics.trigger_seconds.labels(name).set(trigger)
        started.append((start_query(stream, name, handler, settings, args, trigger), handler))
    return started


def await_queries(spark: SparkSession, queries: list[StreamingQuery]) -> None:
    """Until every query has ended (``--available-now``) or one fails, which raises."""
    while any(query.isActive for query in queries):
        spark.streams.awaitAnyTermination()
        spark.streams.resetTerminated()


def run_supervised(spark: SparkSession, settings: Settings, args: StreamOptions, metrics: StreamMetrics) -> None:
    """Run the queries; when one fails, stop the rest and restart them all from their checkpoints
    after a backoff (doubling, capped), up to ``spark.max_restarts`` times in a row."""
    failures = 0
    while True:
        started = time.monotonic()
        running = start_queries(spark, settings, args, metrics)
        queries = [query for query, _ in running]
        log.info("started queries %s; checkpoints under %s", [q.name for q in queries],
                 settings.spark.checkpoint_root)
        poller = ProgressPoller(metrics, queries)
        try:
            await_queries(spark, queries)
            return
        except StreamingQueryException as error:
            for query in queries:
                query.stop()
            spark.streams.resetTerminated()
            for _, handler in running:
                handler.close()
            if time.monotonic() - started > settings.spark.healthy_run_seconds:
                failures = 0
            failures += 1
            if failures > settings.spark.max_restarts:
                raise
            delay = backoff_seconds(failures - 1, settings.spark.restart_backoff_seconds,
                                    settings.spark.max_restart_backoff_seconds)
            metrics.restarts.inc()
            log.error("a query failed (%s); restarting all queries from their checkpoints in %.0f s (%d/%d)",
                      str(error).splitlines()[0][:500], delay, failures, settings.spark.max_restarts)
            time.sleep(delay)
        finally:
            poller.stop()


def query_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = set(names) - set(QUERIES)
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"queries are a comma-separated subset of {','.join(QUERIES)}, "
                                         f"not {text!r}")
    return tuple(name for name in QUERIES if name in names)


@dataclass(frozen=True)
class StreamOptions:
    """The job's options, typed; the triggers the command line leaves out come from the settings."""

    available_now: bool
    bars_trigger_seconds: float
    trigger_seconds: float
    lake_trigger_seconds: float
    queries: tuple[str, ...]
    starting_offsets: str
    max_offsets_per_trigger: int | None

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
        spark = settings.spark
        parser.add_argument("--available-now", action="store_true",
                            help="process everything in Kafka now, then exit (backfills, tests)")
        parser.add_argument("--bars-trigger-seconds", type=float, default=None,
                            help="micro-batch interval of the bars (default: spark.bars_trigger_seconds setting, "
                                 f"{spark.bars_trigger_seconds:g})")
        parser.add_argument("--trigger-seconds", type=float, default=None,
                            help="micro-batch interval of the raw trades in Cassandra (default: "
                                 f"spark.trigger_seconds, {spark.trigger_seconds:g})")
        parser.add_argument("--lake-trigger-seconds", type=float, default=None,
                            help="interval of the Iceberg commits (default: spark.lake_trigger_seconds setting, "
                                 f"{spark.lake_trigger_seconds:g})")
        parser.add_argument("--queries", type=query_names, default=QUERIES,
                            help="the queries this application runs, comma-separated (default: all of "
                                 f"{','.join(QUERIES)}); run the bars apart from the others so that nothing "
                                 "competes with them (ticklake stream does)")
        parser.add_argument("--starting-offsets", default="earliest",
                            help="Kafka offsets for a query without a checkpoint: earliest or latest")
        parser.add_argument("--max-offsets-per-trigger", type=int, default=None,
                            help="cap on the Kafka records a micro-batch reads (default: all available)")

    @classmethod
    def from_args(cls, settings: Settings, args: argparse.Namespace) -> StreamOptions:
        spark = settings.spark

        def given(value: float | None, default: float) -> float:
            return default if value is None else value

        return cls(args.available_now, given(args.bars_trigger_seconds, spark.bars_trigger_seconds),
                   given(args.trigger_seconds, spark.trigger_seconds),
                   given(args.lake_trigger_seconds, spark.lake_trigger_seconds), args.queries,
                   args.starting_offsets, args.max_offsets_per_trigger)


def parse_args(argv: list[str], settings: Settings | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    StreamOptions.add_arguments(parser, settings or Settings())
    return parser.parse_args(argv)


def options(argv: list[str] | None, settings: Settings) -> StreamOptions:
    """The command line's options (this process's arguments without ``argv``), typed."""
    return StreamOptions.from_args(settings, parse_args(sys.argv[1:] if argv is None else argv, settings))


def stream(spark: SparkSession, settings: Settings, job_options: StreamOptions) -> int:
    """The job's work: its metrics served while the supervised queries run."""
    metrics = StreamMetrics(journal=settings.spark.phase_journal)
    metrics.serve(settings.spark.metrics_host, settings.spark.metrics_port)
    run_supervised(spark, settings, job_options, metrics)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job(__doc__, StreamOptions, "ticklake-ohlcv-stream", stream, argv)


if __name__ == "__main__":
    sys.exit(main())
