"""Writes of one micro-batch to Cassandra and Iceberg, each safe to repeat.

Spark replays a micro-batch after a crash. Cassandra writes are upserts keyed by the
row's identity, so a replay overwrites itself. Iceberg appends carry the streaming query's
id and the batch id in the snapshot summary and are skipped when that batch is already
committed; bar upserts are MERGEs on the bar's key of bars that already hold the batch
(``bar_state.BarBook``). Together: exactly-once results in both stores.

Iceberg work goes through the job's main session (``lake``), not the cloned session each
streaming query runs in: every session opens its own catalog connection, and the embedded
SQLite catalog deadlocks between connections of one process (Iceberg's JDBC catalog keeps
a read open on each connection it initialises).
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.spark_sql import merge, string_literal, timestamp_literal
from schemas.models import MinuteBar

QUERY_PROPERTY = "ticklake.query-id"
BATCH_PROPERTY = "ticklake.batch-id"


def write_cassandra(rows: DataFrame, keyspace: str, table: str) -> None:
    (
        rows.write.format("org.apache.spark.sql.cassandra")
        .mode("append")
        .options(keyspace=keyspace, table=table)
        .save()
    )


def literal_frame(spark: SparkSession, schema: T.StructType, rows: list[dict]) -> DataFrame:
    """``rows`` (dicts keyed by the schema's field names) as a DataFrame of ``schema``, written as a
    SQL ``VALUES`` list: a few rows from the driver, without the Python workers that
    ``createDataFrame`` starts to unpickle them."""
    names = schema.fieldNames()
    values = ", ".join("(" + ", ".join(sql_literal(row[f.name], f.dataType) for f in schema.fields) + ")"
                       for row in rows)
    return spark.sql(f"SELECT * FROM VALUES {values} AS t({', '.join(names)})").select(
        *(F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields))


def sql_literal(value, data_type: T.DataType) -> str:
    if value is None:
        return f"CAST(NULL AS {data_type.simpleString()})"
    if isinstance(data_type, T.StringType):
        return string_literal(value)
    if isinstance(data_type, T.TimestampType):
        return timestamp_literal(value)
    if isinstance(data_type, T.DateType):
        return f"DATE'{value.isoformat()}'"
    if isinstance(data_type, (T.DoubleType, T.FloatType)):
        return f"CAST('{float(value)!r}' AS DOUBLE)"
    if isinstance(data_type, (T.LongType, T.IntegerType)):
        return f"{int(value)}L"
    if isinstance(data_type, T.BooleanType):
        return "TRUE" if value else "FALSE"
    raise TypeError(f"no SQL literal for {data_type}")


@contextmanager
def shared_view(rows: DataFrame) -> Iterator[str]:
    """``rows`` as a global temporary view, readable from every session of the job."""
    name = f"ticklake_{uuid.uuid4().hex}"
    rows.createGlobalTempView(name)
    try:
        yield f"global_temp.{name}"
    finally:
        rows.sparkSession.catalog.dropGlobalTempView(name)


def last_committed_batch(lake: SparkSession, table: str, query_id: str) -> int:
    """The highest batch id of streaming query ``query_id`` committed to the Iceberg ``table``, or -1."""
    row = lake.sql(
        f"SELECT max(CAST(summary['{BATCH_PROPERTY}'] AS BIGINT)) AS batch FROM {table}.snapshots "
        f"WHERE summary['{QUERY_PROPERTY}'] = '{query_id}'"
    ).first()
    return -1 if row is None or row.batch is None else row.batch


def append_iceberg_once(lake: SparkSession, rows: DataFrame, table: str, query_id: str, batch_id: int) -> bool:
    """Append ``rows`` unless this query's batch is already in the table. True if written."""
    if batch_id <= last_committed_batch(lake, table, query_id):
        return False
    with shared_view(rows) as view:
        (
            lake.table(view).writeTo(table)
            .option(f"snapshot-property.{QUERY_PROPERTY}", query_id)
            .option(f"snapshot-property.{BATCH_PROPERTY}", str(batch_id))
            .append()
        )
    return True


def merge_bars_iceberg(lake: SparkSession, bars: DataFrame, table: str) -> None:
    """Upsert 1-minute bars by ``(symbol, window_start)``; repeated, it leaves the same rows (in a new
    snapshot)."""
    with shared_view(bars) as view:
        lake.sql(merge(table, view, ("symbol", "window_start"), update=list(MinuteBar.model_fields)))
