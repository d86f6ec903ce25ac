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

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from jobs import sinks, transforms
from jobs.metrics import MetricsListener, StreamMetrics
from jobs.session import build_session, iceberg_table
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


def _with_trigger(writer: DataStreamWriter, args: argparse.Namespace) -> DataStreamWriter:
    if args.available_now:
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=f"{args.trigger_seconds} seconds")


def start_raw_query(
    decoded: DataFrame, settings: Settings, args: argparse.Namespace, metrics: StreamMetrics
) -> StreamingQuery:
    cas = settings.cassandra
    trades_table = iceberg_table(settings, settings.iceberg.trades_table)
    quarantine_table = iceberg_table(settings, settings.iceberg.quarantine_table)

    def write(batch: DataFrame, batch_id: int) -> None:
        batch.persist()
        trades = transforms.valid_trades(batch)
        sinks.write_cassandra(trades, cas.keyspace, cas.trades_table)
        sinks.append_iceberg_once(trades, trades_table, "raw", batch_id)
        quarantined = transforms.quarantined(batch).persist()
        refused = quarantined.count()
        if refused and sinks.append_iceberg_once(quarantined, quarantine_table, "raw-quarantine", batch_id):
            metrics.quarantined_rows.labels("raw").inc(refused)
            log.warning("batch %d: %d records quarantined in %s", batch_id, refused, quarantine_table)
        quarantined.unpersist()
        batch.unpersist()

    writer = decoded.writeStream.queryName("raw").foreachBatch(write).option(
        "checkpointLocation", str(settings.spark.checkpoint_root / "raw")
    )
    return _with_trigger(writer, args).start()


def start_bars_query(decoded: DataFrame, settings: Settings, args: argparse.Namespace) -> StreamingQuery:
    cas = settings.cassandra
    table = iceberg_table(settings, settings.iceberg.bars_table)
    trades = transforms.valid_trades(decoded).withWatermark(
        "trade_ts", f"{settings.spark.watermark_seconds} seconds"
    )

    def write(bars: DataFrame, batch_id: int) -> None:
        bars.persist()
        sinks.write_cassandra(bars, cas.keyspace, cas.bars_table)
        sinks.merge_bars_iceberg(bars, table)
        bars.unpersist()

    writer = (
        transforms.one_minute_bars(trades)
        .writeStream.queryName("bars")
        .outputMode("update")
        .foreachBatch(write)
        .option("checkpointLocation", str(settings.spark.checkpoint_root / "bars"))
    )
    return _with_trigger(writer, args).start()


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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings()
    if args.trigger_seconds is None:
        args.trigger_seconds = settings.spark.trigger_seconds
    spark = build_session(settings, "ticklake-ohlcv-stream")
    spark.sparkContext.setLogLevel("WARN")
    metrics = StreamMetrics()
    metrics.serve(settings.spark.metrics_port)
    spark.streams.addListener(MetricsListener(metrics))
    decoded = transforms.decode(kafka_source(spark, settings, args.starting_offsets))
    queries = [start_raw_query(decoded, settings, args, metrics), start_bars_query(decoded, settings, args)]
    log.info("started queries %s; checkpoints under %s", [q.name for q in queries], settings.spark.checkpoint_root)
    for query in queries:
        query.awaitTermination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
