"""The pipeline's Kafka topics: their names and creating them (idempotent)."""
from __future__ import annotations

from ticklake.config import Settings
from ticklake.security import kafka_python, kafka_unreachable


def topic_names(settings: Settings) -> list[str]:
    """Every topic these settings name: trades, dead letters, and the real-time job's three."""
    k, f = settings.kafka, settings.flink
    return [k.trades_topic, k.dead_letter_topic, f.alerts_topic, f.bars_topic, f.rejects_topic]


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
