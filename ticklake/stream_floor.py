"""The floor of ``ticklake bench stream --floor``: the smallest Structured Streaming job that does
the streaming job's visible work, to show what Spark itself costs on this machine.

    ./spark-submit.sh ticklake/stream_floor.py [the options of jobs/ohlcv_stream.py]

The job's harness (Kafka source, one query and checkpoint per path, the phase journal) with the
least each path can do:
- ``bars``: each record's symbol and minute (two JSON fields, no validation), counted per symbol
  and minute in one task, the running counts kept by the driver and written to the bars table's
  ``trade_count`` with cassandra-driver;
- ``trades``: the job's own raw-trade path, which is already this small: the records parsed and
  checked as the job does, written by the Cassandra connector;
- ``lake``: the parsed trades of the interval cached, appended to Iceberg, and their bars
  aggregated and appended too: no quarantine, no MERGE, no check for a batch already committed.
No exactly-once for the bars, and the lake's bars are not exact when a minute spans two batches:
what remains is Spark's micro-batch, a Kafka read, the parse, and the stores' writes.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import sinks, transforms
from jobs.metrics import ProgressPoller, StreamMetrics
from jobs.ohlcv_stream import Handler, TradesHandler, await_queries, kafka_source, options, start_query
from jobs.session import build_session, iceberg_table
from ticklake.config import Settings
from ticklake.cql import cassandra_cluster


class CountedBars(Handler):
    """Trades counted per symbol and minute, the counts written to the bars table by the driver."""

    def __init__(self, settings: Settings, one_task: bool) -> None:
        cas = settings.cassandra
        self.one_task = one_task
        self.session = cassandra_cluster(settings).connect()
        self.insert = self.session.prepare(f"INSERT INTO {cas.qualified(cas.bars_table)} "
                                           "(symbol, trade_date, window_start, trade_count) VALUES (?, ?, ?, ?)")
        self.counts: dict[tuple[str, int], int] = {}

    def __call__(self, batch: DataFrame, batch_id: int, query_id: str) -> None:
        text = F.col("value").cast("string")
        rows = ((batch.coalesce(1) if self.one_task else batch)
                .select(F.get_json_object(text, "$.symbol").alias("symbol"),
                        (F.get_json_object(text, "$.trade_time_ms").cast("long") / 60_000).cast("long").alias("minute"))
                .groupBy("symbol", "minute").count().collect())
        writes = []
        for row in rows:
            if row.symbol is not None and row.minute is not None:
                key = (row.symbol, row.minute)
                self.counts[key] = self.counts.get(key, 0) + row["count"]
                start = datetime.fromtimestamp(row.minute * 60, timezone.utc)
                writes.append(self.session.execute_async(self.insert, (row.symbol, start.date(), start, self.counts[key])))
        for write in writes:
            write.result()

    def close(self) -> None:
        self.session.cluster.shutdown()


class AppendedLake(Handler):
    """The batch's trades and their bars appended to Iceberg (through the main session: sinks)."""

    def __init__(self, lake: SparkSession, settings: Settings) -> None:
        ice = settings.iceberg
        self.lake = lake
        self.trades_table, self.bars_table = (iceberg_table(settings, name) for name in (ice.trades_table, ice.bars_table))

    def __call__(self, batch: DataFrame, batch_id: int, query_id: str) -> None:
        trades = batch.persist()
        try:
            with sinks.shared_view(trades) as view:
                self.lake.table(view).writeTo(self.trades_table).append()
                transforms.one_minute_bars(self.lake.table(view)).writeTo(self.bars_table).append()
        finally:
            trades.unpersist()


def main(argv: list[str] | None = None) -> int:
    settings = Settings()
    args = options(argv, settings)
    spark = build_session(settings, "ticklake-stream-floor")
    spark.sparkContext.setLogLevel("WARN")
    metrics = StreamMetrics(journal=settings.spark.phase_journal)
    source = kafka_source(spark, settings, args)
    valid = transforms.valid_trades(transforms.decode(source))
    paths = {"bars": (source, lambda: CountedBars(settings, one_task=not args.available_now), args.bars_trigger_seconds),
             "trades": (valid, lambda: TradesHandler(settings, metrics), args.trigger_seconds),
             "lake": (valid, lambda: AppendedLake(spark, settings), args.lake_trigger_seconds)}
    running = []
    for name in args.queries:
        stream, make_handler, trigger = paths[name]
        handler = make_handler()
        running.append((start_query(stream, name, handler, settings, args, trigger), handler))
    poller = ProgressPoller(metrics, [query for query, _ in running])
    try:
        await_queries(spark, [query for query, _ in running])
    finally:
        poller.stop()
        for _, handler in running:
            handler.close()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
