"""The floor of ``ticklake bench stream --floor``: the smallest Structured Streaming job that
does the bars path's visible work, to show what Spark itself costs on this machine.

    ./spark-submit.sh ticklake/stream_floor.py --trigger-seconds 1

Kafka source -> ``foreachBatch``: each record's symbol and minute (two JSON fields, no
validation), counted per symbol and minute in one task, the running counts kept by the driver
and written to the bars table's ``trade_count`` with cassandra-driver. No exactly-once, no
quarantine, no raw trades, no lake: what remains is Spark's micro-batch, a Kafka read and one
small Cassandra write.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from pyspark.sql import functions as F

from jobs.session import build_session
from ticklake.config import Settings
from ticklake.cql import cassandra_cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trigger-seconds", type=float, default=1.0)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings()
    spark = build_session(settings, "ticklake-stream-floor")
    spark.sparkContext.setLogLevel("WARN")
    cas = settings.cassandra
    session = cassandra_cluster(settings).connect()
    insert = session.prepare(f"INSERT INTO {cas.keyspace}.{cas.bars_table} "
                             "(symbol, trade_date, window_start, trade_count) VALUES (?, ?, ?, ?)")
    counts: dict[tuple[str, int], int] = {}

    def handle(batch, batch_id: int) -> None:
        text = F.col("value").cast("string")
        rows = (batch.coalesce(1)
                .select(F.get_json_object(text, "$.symbol").alias("symbol"),
                        (F.get_json_object(text, "$.trade_time_ms").cast("long") / 60_000).cast("long").alias("minute"))
                .groupBy("symbol", "minute").count().collect())
        writes = []
        for row in rows:
            if row.symbol is not None and row.minute is not None:
                key = (row.symbol, row.minute)
                counts[key] = counts.get(key, 0) + row["count"]
                start = datetime.fromtimestamp(row.minute * 60, timezone.utc)
                writes.append(session.execute_async(insert, (row.symbol, start.date(), start, counts[key])))
        for write in writes:
            write.result()

    query = (spark.readStream.format("kafka")
             .option("kafka.bootstrap.servers", settings.kafka.bootstrap_servers)
             .option("subscribe", settings.kafka.trades_topic).option("startingOffsets", "latest").load()
             .writeStream.queryName("bars").foreachBatch(handle)
             .option("checkpointLocation", str(settings.spark.checkpoint_root / "bars"))
             .trigger(processingTime=f"{args.trigger_seconds} seconds").start())
    try:
        query.awaitTermination()
    finally:
        session.cluster.shutdown()
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
