"""The pipeline's Kafka topics: their names, creating them (idempotent), and reading one whole."""
from __future__ import annotations

from collections.abc import Iterator

from ticklake.config import Settings
from ticklake.errors import UserError
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


def read_topic(settings: Settings, topic: str, *, since_ms: int | None = None, follow: bool = False,
               poll_ms: int = 500, client_id: str = "ticklake") -> Iterator:
    """The committed records of ``topic`` (kafka-python's ``ConsumerRecord``: partition, offset,
    value, ...) as polled, from ``since_ms`` of Kafka record time (else from the start) up to
    its end, or on and on with ``follow``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python(settings), enable_auto_commit=False, isolation_level="read_committed",
                             client_id=client_id)
    try:
        known = consumer.partitions_for_topic(topic)
        if not known:
            raise UserError(f"the topic {topic} does not exist: run 'ticklake up'")
        partitions = [TopicPartition(topic, p) for p in sorted(known)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        if since_ms is not None:
            for tp, found in consumer.offsets_for_times({tp: since_ms for tp in partitions}).items():
                if found is None:
                    consumer.seek_to_end(tp)
                else:
                    consumer.seek(tp, found.offset)
        end = consumer.end_offsets(partitions)  # read_committed: the last stable offsets
        while True:
            batch = consumer.poll(timeout_ms=poll_ms)
            for tp_records in batch.values():
                yield from tp_records
            if not follow and not batch and all(consumer.position(tp) >= end[tp] for tp in partitions):
                return
    finally:
        consumer.close()
