"""SparkSession for ticklake jobs: the shared Iceberg catalog, Cassandra, UTC everywhere.

Jars are not added here: ``spark-submit.sh`` passes them, because the JVM starts before
any Python runs. A session built outside spark-submit (tests) gets them from
``local_jars_option``.
"""
from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

from ticklake.config import Settings
from ticklake.security import spark_conf as security_spark_conf

# Fair-scheduler pools of the streaming job's queries (jobs/ohlcv_stream.py names each query's
# pool after it): the bars, which people watch, get the next free core before anything else;
# the raw trades and the lake's minute of trades share the rest.
POOLS = {"bars": (8, 1), "trades": (2, 0), "lake": (1, 0)}  # name -> (weight, minShare in cores)


def fair_pools_file(settings: Settings) -> Path:
    """The pools as Spark's allocation file, written under the state directory (the job's code
    may run from a zip, so the file cannot travel with it)."""
    path = settings.state_dir / "spark" / "fairscheduler.xml"
    pools = "".join(f'<pool name="{name}"><schedulingMode>FIFO</schedulingMode><weight>{weight}</weight>'
                    f'<minShare>{share}</minShare></pool>' for name, (weight, share) in POOLS.items())
    text = f'<?xml version="1.0"?><allocations>{pools}</allocations>\n'
    if not path.is_file() or path.read_text() != text:  # replaced whole: other jobs may be reading it
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(text)
        partial.replace(path)
    return path


def spark_conf(settings: Settings) -> dict[str, str]:
    ice, cas = settings.iceberg, settings.cassandra
    catalog = f"spark.sql.catalog.{ice.catalog_name}"
    return security_spark_conf(settings) | {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.type": "jdbc",
        f"{catalog}.uri": ice.jdbc_uri,
        f"{catalog}.warehouse": ice.warehouse_uri,
        # pyiceberg's SqlCatalog creates the catalog tables (V0 layout; ticklake up provisions
        # them). Iceberg's own initialisation of those tables leaves a read open on SQLite,
        # which then blocks every other writer of the catalog file: skip it.
        f"{catalog}.jdbc.schema-version": "V0",
        f"{catalog}.jdbc.init-catalog-tables": "false",
        # SQLite has one writer at a time: one catalog connection per JVM, and commits from
        # other processes (pyiceberg) wait for the lock instead of failing.
        f"{catalog}.clients": "1",
        f"{catalog}.jdbc.busy_timeout": "60000",
        "spark.cassandra.connection.host": ",".join(cas.contact_points),
        "spark.cassandra.connection.port": str(cas.port),
        "spark.cassandra.output.consistency.level": "LOCAL_QUORUM",
        # Unlogged batches of up to 32 KiB per Cassandra partition (a symbol's day of trades),
        # 16 in flight per task: three times the throughput of the connector's 1 KiB default
        # (docs/BENCHMARKS.md); infra/cassandra/cassandra.yaml accepts batches that size quietly.
        "spark.cassandra.output.batch.grouping.key": "partition",
        "spark.cassandra.output.batch.size.bytes": "32768",
        "spark.cassandra.output.concurrent.writes": "16",
        # Fail a write soon when Cassandra is away (the job restarts its queries and waits it
        # out) and reconnect soon when it is back, instead of retrying inside one task for minutes.
        "spark.cassandra.query.retry.count": "3",
        "spark.cassandra.connection.timeoutMS": "5000",
        "spark.cassandra.read.timeoutMS": "30000",
        "spark.cassandra.connection.reconnectionDelayMS.min": "500",
        "spark.cassandra.connection.reconnectionDelayMS.max": "5000",
        # The connector's session is closed a second after a write, so a write during a Cassandra
        # outage fails (and the job restarts its queries) instead of hanging on a kept session's
        # reconnection: kept for 600 s, the outage test hung (docs/BENCHMARKS.md). The bars do not
        # use the connector.
        "spark.cassandra.connection.keepAliveMS": "1000",
        # The streaming job's queries share the cores (one pool each, the cassandra query's
        # weighted), so a big lake batch does not hold back the Cassandra writes people watch.
        "spark.scheduler.mode": "FAIR",
        "spark.scheduler.allocation.file": fair_pools_file(settings).as_uri(),
        # Checkpoints (spark.checkpoint_root is a file system path) through the FileSystem API,
        # whose rename is atomic on a local or mounted file system. The default goes through
        # FileContext, whose rename of a local file forks `readlink` for both paths: tenths of a
        # second per micro-batch here (docs/BENCHMARKS.md).
        "spark.sql.streaming.checkpointFileManagerClass":
            "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager",
        # Micro-batches are cached for the few passes over them, then dropped: compressing the
        # cached columns cost more CPU than it saved (docs/BENCHMARKS.md).
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
    }


def local_jars_option(settings: Settings) -> str:
    return ",".join(str(p) for p in sorted((settings.jars_dir / "spark").glob("*.jar")))


# The JVM classes PySpark names by their short name on every DataFrame and Column call
# (``jvm.functions``, ``jvm.PythonUtils``...). py4j resolves a short name by trying it in each of
# PySpark's wildcard imports in turn, and each miss makes the JVM search every jar on the class
# path (three hundred of them): 2.7 ms per ``F.col`` here, 0.5 s to build a micro-batch's plan.
# Imported by their full names, they are found at once (0.7 ms per ``F.col``).
PY4J_CLASSES = ("org.apache.spark.sql.functions", "org.apache.spark.sql.Column", "org.apache.spark.sql.SparkSession",
                "org.apache.spark.api.python.PythonUtils", "org.apache.spark.api.python.SerDeUtil",
                "org.apache.spark.sql.api.python.PythonSQLUtils")


def build_session(settings: Settings, app_name: str, with_jars: bool = False) -> SparkSession:
    from py4j.java_gateway import java_import

    builder = SparkSession.builder.appName(app_name)
    if with_jars:
        builder = builder.master(settings.spark.master).config("spark.jars", local_jars_option(settings))
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    for name in PY4J_CLASSES:
        java_import(session.sparkContext._jvm, name)
    return session


def iceberg_table(settings: Settings, table: str) -> str:
    ice = settings.iceberg
    return f"{ice.catalog_name}.{ice.namespace}.{table}"
