"""Create what the pipeline needs on running services: topics, keyspace and tables, lake tables.

Every step is idempotent, so provisioning runs on each ``ticklake up``.
"""
from __future__ import annotations

from pathlib import Path

from schemas.derive import columns, cql_create_table
from schemas.models import MinuteBar, TradeRow
from ticklake import lake
from ticklake.config import Settings
from ticklake.security import cassandra_driver, cassandra_refused, kafka_python, kafka_unreachable


def ensure_topics(settings: Settings) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    k = settings.kafka
    try:
        admin = KafkaAdminClient(**kafka_python(settings, "admin"), client_id="ticklake-provision")
    except KafkaError:
        raise kafka_unreachable(settings, "admin") from None
    try:
        existing = set(admin.list_topics())
        config = {"retention.ms": str(k.retention_ms), "compression.type": "producer",
                  "min.insync.replicas": str(k.min_insync_replicas)}
        # The real-time job's upsert streams keep the newest record of each key.
        compacted = {"cleanup.policy": "compact", "compression.type": "producer",
                     "min.insync.replicas": str(k.min_insync_replicas)}
        f = settings.flink
        topics = {k.trades_topic: config, k.dead_letter_topic: config, f.alerts_topic: config,
                  f.bars_topic: compacted, f.rejects_topic: compacted}
        wanted = [
            NewTopic(name, num_partitions=k.partitions, replication_factor=k.replication_factor, topic_configs=topic_config)
            for name, topic_config in topics.items()
            if name not in existing
        ]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def cassandra_cluster(settings: Settings, consistency_level: int | None = None, request_timeout: float = 10.0,
                      user: str | None = "app", **options):
    """A driver Cluster; with the secure profile it logs in as the ``cassandra_<user>`` role."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

    c = settings.cassandra
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=c.local_dc)),
                               consistency_level=ConsistencyLevel.LOCAL_ONE if consistency_level is None
                               else consistency_level, request_timeout=request_timeout)
    return Cluster(c.contact_points, port=c.port, protocol_version=5,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile}, **cassandra_driver(settings, user), **options)


def cassandra_session(settings: Settings, keyspace: str | None = None, user: str = "app"):
    """A session; a UserError saying what to fix when no node takes it."""
    from cassandra.cluster import NoHostAvailable

    cluster = cassandra_cluster(settings, user=user)
    try:
        return cluster.connect(keyspace)
    except NoHostAvailable as error:
        cluster.shutdown()
        raise cassandra_refused(settings, user, error) from None


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


def drop_named(settings: Settings) -> None:
    """Delete the topics and tables these settings name (tests clean up their private ones)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(**kafka_python(settings, "admin"), client_id="ticklake-provision")
    try:
        existing = set(admin.list_topics())
        named = [t for t in (settings.kafka.trades_topic, settings.kafka.dead_letter_topic, settings.flink.bars_topic,
                             settings.flink.alerts_topic, settings.flink.rejects_topic) if t in existing]
        if named:
            admin.delete_topics(named)
    finally:
        admin.close()
    session = cassandra_session(settings, user="superuser")
    try:
        for table in (settings.cassandra.trades_table, settings.cassandra.bars_table):
            session.execute(f"DROP TABLE IF EXISTS {settings.cassandra.keyspace}.{table}", timeout=60)
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
