"""Create what the pipeline needs on running services: topics, keyspace and tables, lake tables.

Every step is idempotent, so provisioning runs on each ``ticklake up``.
"""
from __future__ import annotations

from schemas.derive import columns, cql_create_table
from schemas.models import MinuteBar, TradeRow
from ticklake import lake
from ticklake.config import Settings
from ticklake.cql import cassandra_session
from ticklake.topics import ensure_topics


def cql_statements(settings: Settings) -> list[str]:
    c = settings.cassandra
    return [
        f"CREATE KEYSPACE IF NOT EXISTS {c.keyspace} WITH replication = "
        f"{{'class': 'SimpleStrategy', 'replication_factor': {c.replication_factor}}}",
        cql_create_table(TradeRow, c.keyspace, c.trades_table, c.trades_ttl_seconds),
        cql_create_table(MinuteBar, c.keyspace, c.bars_table, c.bars_ttl_seconds),
    ]


def ensure_cassandra_schema(settings: Settings) -> None:
    session = cassandra_session(settings, user="superuser")
    try:
        for statement in cql_statements(settings):
            session.execute(statement, timeout=60)
        add_missing_columns(session, settings.cassandra.keyspace, settings.cassandra.bars_table, MinuteBar)
    finally:
        session.cluster.shutdown()


def add_missing_columns(session, keyspace: str, table: str, model) -> None:
    """Columns the model has gained since the table was made (new columns are optional)."""
    rows = session.execute("SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s "
                           "AND table_name = %s", (keyspace, table))
    present = {row.column_name for row in rows}
    for column in columns(model):
        if column.name not in present:
            session.execute(f"ALTER TABLE {keyspace}.{table} ADD {column.cql}", timeout=60)


def wipe_pipeline_state(settings: Settings) -> None:
    """Delete checkpoints and the lake: they refer to Kafka offsets and go with Kafka's data."""
    import shutil

    shutil.rmtree(settings.spark.checkpoint_root, ignore_errors=True)
    shutil.rmtree(settings.iceberg.warehouse, ignore_errors=True)
    settings.iceberg.catalog_db.unlink(missing_ok=True)


def provision(settings: Settings) -> None:
    if settings.security.enabled:
        from ticklake import access

        access.ensure_kafka_users(settings)
        access.ensure_cassandra_roles(settings)
    ensure_topics(settings)
    ensure_cassandra_schema(settings)
    if settings.security.enabled:
        access.ensure_grants(settings)
    lake.ensure_tables(settings)
