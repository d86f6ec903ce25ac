"""Writes of one micro-batch to Cassandra and Iceberg, each safe to repeat.

Spark replays a micro-batch after a crash. Cassandra writes are upserts keyed by the
row's identity, so a replay overwrites itself. Iceberg appends carry the query name and
batch id in the snapshot summary and are skipped when that batch is already committed;
bar upserts are MERGEs on the bar's key. Together: exactly-once results in both stores.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from schemas.models import Bar

QUERY_PROPERTY = "ticklake.query"
BATCH_PROPERTY = "ticklake.batch-id"


def write_cassandra(rows: DataFrame, keyspace: str, table: str) -> None:
    (
        rows.write.format("org.apache.spark.sql.cassandra")
        .mode("append")
        .options(keyspace=keyspace, table=table)
        .save()
    )


def last_committed_batch(spark: SparkSession, table: str, query: str) -> int:
    """The highest batch id of ``query`` committed to the Iceberg ``table``, or -1."""
    row = spark.sql(
        f"SELECT max(CAST(summary['{BATCH_PROPERTY}'] AS BIGINT)) AS batch FROM {table}.snapshots "
        f"WHERE summary['{QUERY_PROPERTY}'] = '{query}'"
    ).first()
    return -1 if row is None or row.batch is None else row.batch


def append_iceberg_once(rows: DataFrame, table: str, query: str, batch_id: int) -> bool:
    """Append ``rows`` unless this query's batch is already in the table. True if written."""
    if batch_id <= last_committed_batch(rows.sparkSession, table, query):
        return False
    (
        rows.writeTo(table)
        .option(f"snapshot-property.{QUERY_PROPERTY}", query)
        .option(f"snapshot-property.{BATCH_PROPERTY}", str(batch_id))
        .append()
    )
    return True


def merge_bars_iceberg(bars: DataFrame, table: str) -> None:
    """Upsert bars by ``(symbol, window_start)``; repeating it leaves the table unchanged."""
    view = f"ticklake_bar_updates_{abs(hash(table))}"
    bars.createOrReplaceTempView(view)
    key = " AND ".join(f"t.{c} = s.{c}" for c in ("symbol", "window_start"))
    columns = list(Bar.model_fields)
    bars.sparkSession.sql(
        f"MERGE INTO {table} t USING {view} s ON {key} "
        f"WHEN MATCHED THEN UPDATE SET {', '.join(f't.{c} = s.{c}' for c in columns)} "
        f"WHEN NOT MATCHED THEN INSERT *"
    )
