"""Reading a whole topic (ticklake.topics.read_topic) on the real Kafka."""
from __future__ import annotations

import pytest

from ticklake.errors import UserError
from ticklake.security import kafka_python
from ticklake.topics import read_topic

pytestmark = pytest.mark.integration


def test_a_topic_is_read_whole_once_and_from_a_time(pipeline_settings):
    from kafka import KafkaProducer

    settings, topic = pipeline_settings, pipeline_settings.kafka.dead_letter_topic
    producer = KafkaProducer(**kafka_python(settings, "producer"))
    for i in range(300):
        producer.send(topic, key=str(i % 7).encode(), value=str(i).encode(), timestamp_ms=1_000_000 + i)
    producer.flush()
    producer.close()
    assert sorted(int(r.value) for r in read_topic(settings, topic)) == list(range(300))
    assert sorted(int(r.value) for r in read_topic(settings, topic, since_ms=1_000_250)) == list(range(250, 300))
    with pytest.raises(UserError, match="does not exist"):
        list(read_topic(settings, topic + ".missing"))
