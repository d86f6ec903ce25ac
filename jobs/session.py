"""SparkSession for ticklake jobs: the shared Iceberg catalog, Cassandra, UTC everywhere.

Jars are not added here: ``spark-submit.sh`` passes them, because the JVM starts before
any Python runs. A session built outside spark-submit (tests) gets them from
``local_jars_option``.
"""
from __future__ import annotations

from pyspark.sql import SparkSession

from ticklake.config import Settings


def spark_conf(settings: Settings) -> dict[str, str]:
    ice, cas = settings.iceberg, settings.cassandra
    catalog = f"spark.sql.catalog.{ice.catalog_name}"
    return {
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
        "spark.cassandra.connection.keepAliveMS": "1000",
        # The streaming job's queries share the cores fairly (one pool each), so a big lake
        # batch does not hold back the Cassandra queries that people watch.
        "spark.scheduler.mode": "FAIR",
        # Micro-batches are cached for the few passes over them, then dropped: compressing the
        # cached columns cost more CPU than it saved (docs/BENCHMARKS.md).
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
    }


def local_jars_option(settings: Settings) -> str:
    return ",".join(str(p) for p in sorted((settings.jars_dir / "spark").glob("*.jar")))


def build_session(settings: Settings, app_name: str, with_jars: bool = False) -> SparkSession:
    builder = SparkSession.builder.appName(app_name)
    if with_jars:
        builder = builder.master(settings.spark.master).config("spark.jars", local_jars_option(settings))
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def iceberg_table(settings: Settings, table: str) -> str:
    ice = settings.iceberg
    return f"{ice.catalog_name}.{ice.namespace}.{table}"
