"""Runs that share the services but none of the data: tests and benchmarks give their settings
a tag (``isolated``) and delete what the tagged names hold when done (``drop_named``).
Nothing in the pipeline itself uses this module."""
from __future__ import annotations

from pathlib import Path

from ticklake import lake
from ticklake.config import Settings
from ticklake.cql import cassandra_session
from ticklake.security import kafka_python
from ticklake.topics import topic_names


def drop_named(settings: Settings) -> None:
    """Delete the topics and tables these settings name (tests clean up their private ones)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**kafka_python(settings, "admin"), client_id="ticklake-provision")
    try:
        existing = set(admin.list_topics())
        named = [t for t in topic_names(settings) if t in existing]
        if named:
            admin.delete_topics(named)
    finally:
        admin.close()
    session = cassandra_session(settings, user="superuser")
    try:
        for table in (settings.cassandra.trades_table, settings.cassandra.bars_table):
            session.execute(f"DROP TABLE IF EXISTS {settings.cassandra.qualified(table)}", timeout=60)
    finally:
        session.cluster.shutdown()
    catalog = lake.catalog(settings)
    for identifier in lake.table_specs(settings):
        if catalog.table_exists(identifier):
            catalog.purge_table(identifier)


def isolated(settings: Settings, tag: str, checkpoint_root: Path) -> Settings:
    """A copy of ``settings`` whose topics, tables and checkpoints carry ``tag``: a run (a test,
    a benchmark) that shares the services but none of the data."""
    k, c, i, f = settings.kafka, settings.cassandra, settings.iceberg, settings.flink
    return settings.model_copy(update={
        "kafka": k.model_copy(update={
            "trades_topic": f"{k.trades_topic}.{tag}", "dead_letter_topic": f"{k.dead_letter_topic}.{tag}",
        }),
        "cassandra": c.model_copy(update={
            "trades_table": f"{c.trades_table}_{tag}", "bars_table": f"{c.bars_table}_{tag}",
        }),
        "iceberg": i.model_copy(update={
            "trades_table": f"{i.trades_table}_{tag}", "bars_table": f"{i.bars_table}_{tag}",
            "quarantine_table": f"{i.quarantine_table}_{tag}",
            "rollup_tables": {timeframe: f"{name}_{tag}" for timeframe, name in i.rollup_tables.items()},
        }),
        "spark": settings.spark.model_copy(update={"checkpoint_root": checkpoint_root}),
        "flink": f.model_copy(update={
            "bars_topic": f"{f.bars_topic}.{tag}", "alerts_topic": f"{f.alerts_topic}.{tag}",
            "rejects_topic": f"{f.rejects_topic}.{tag}", "state_dir": checkpoint_root / "flink",
        }),
    })
