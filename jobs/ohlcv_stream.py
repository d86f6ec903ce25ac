"""Streaming job: Kafka trades -> raw trades and 1-minute OHLCV bars in Cassandra and Iceberg.

    ./spark-submit.sh jobs/ohlcv_stream.py [--available-now] [--trigger-seconds 5]

Two queries share the session, each with its own checkpoint under the configured
checkpoint root: ``raw`` stores every valid trade, ``bars`` keeps the per-minute state
(event time, watermark) and upserts each bar as it changes (update mode).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs import sinks, transforms
from jobs.metrics import MetricsListener, StreamMetrics
from jobs.session import build_session, iceberg_table
from ticklake.logs import configure_logging
from ticklake.config import Settings

log = logging.getLogger("ticklake.ohlcv_stream")


def kafka_source(spark: SparkSession, settings: Settings, starting_offsets: str) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
        .option("subscribe", settings.kafka.trades_topic)
        .option("startingOffsets", starting_offsets)
        .option("failOnDataLoss", "true")
        .load()
    )


BatchHandler = Callable[[DataFrame, int, str], None]


def start_query(
    stream: DataFrame, name: str, handler: BatchHandler, settings: Settings, args: argparse.Namespace,
    output_mode: str = "append",
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
        writer = writer.trigger(processingTime=f"{args.trigger_seconds} seconds")
    query = writer.start()
    identity["id"] = str(query.id)
    started.set()
    return query


def start_raw_query(
    lake: SparkSession, decoded: DataFrame, settings: Settings, args: argparse.Namespace, metrics: StreamMetrics
) -> StreamingQuery:
    cas = settings.cassandra
    trades_table = iceberg_table(settings, settings.iceberg.trades_table)
    quarantine_table = iceberg_table(settings, settings.iceberg.quarantine_table)

    def write(batch: DataFrame, batch_id: int, query_id: str) -> None:
        batch.persist()
        trades = transforms.valid_trades(batch)
        sinks.write_cassandra(trades, cas.keyspace, cas.trades_table)
        sinks.append_iceberg_once(lake, trades, trades_table, query_id, batch_id)
        quarantined = transforms.quarantined(batch).persist()
        refused = quarantined.count()
        if refused and sinks.append_iceberg_once(lake, quarantined, quarantine_table, query_id, batch_id):
            metrics.quarantined_rows.labels("raw").inc(refused)
            log.warning("batch %d: %d records quarantined in %s", batch_id, refused, quarantine_table)
        quarantined.unpersist()
        batch.unpersist()

    return start_query(decoded, "raw", write, settings, args)


def start_bars_query(
    lake: SparkSession, decoded: DataFrame, settings: Settings, args: argparse.Namespace
) -> StreamingQuery:
    cas = settings.cassandra
    table = iceberg_table(settings, settings.iceberg.bars_table)
    trades = transforms.valid_trades(decoded).withWatermark(
        "trade_ts", f"{settings.spark.watermark_seconds} seconds"
    )

    def write(bars: DataFrame, batch_id: int, query_id: str) -> None:
        bars.persist()
        sinks.write_cassandra(bars, cas.keyspace, cas.bars_table)
        sinks.merge_bars_iceberg(lake, bars, table)
        bars.unpersist()

    return start_query(transforms.one_minute_bars(trades), "bars", write, settings, args, output_mode="update")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--available-now", action="store_true",
                        help="process everything in Kafka now, then exit (backfills, tests)")
    parser.add_argument("--trigger-seconds", type=float, default=None,
                        help="micro-batch interval (default: spark.trigger_seconds setting)")
    parser.add_argument("--starting-offsets", default="earliest",
                        help="Kafka offsets for a query without a checkpoint: earliest or latest")
    args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings()
    if args.trigger_seconds is None:
        args.trigger_seconds = settings.spark.trigger_seconds
    spark = build_session(settings, "ticklake-ohlcv-stream")
    spark.sparkContext.setLogLevel("WARN")
    metrics = StreamMetrics()
    metrics.serve(settings.spark.metrics_port)
    listener = MetricsListener(metrics)
    spark.streams.addListener(listener)
    decoded = transforms.decode(kafka_source(spark, settings, args.starting_offsets))
    queries = [
        start_raw_query(spark, decoded, settings, args, metrics),
        start_bars_query(spark, decoded, settings, args),
    ]
    log.info("started queries %s; checkpoints under %s", [q.name for q in queries], settings.spark.checkpoint_root)
    try:
        for query in queries:
            query.awaitTermination()
    finally:
        # Detach the Python listener before the gateway closes, or the JVM reports
        # the terminated queries to a Python process that is gone.
        spark.streams.removeListener(listener)
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
