"""Arbitrary frames through the producer's Kafka path: nothing crashes, every trade lands once."""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from producers.frames import FrameRules, parse_frame
from producers.metrics import ProducerMetrics
from producers.sinks import KafkaFrameSink, frame_rules
from ticklake.security import kafka_python

pytestmark = pytest.mark.integration

NOW = int(time.time() * 1000)
valid_trade = st.fixed_dictionaries(
    {"s": st.sampled_from(["AAPL", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]),
     "p": st.floats(min_value=0.01, max_value=1e6), "t": st.integers(NOW - 1000, NOW + 1000),
     "v": st.sampled_from([0, 1, 2.5, 100])},
    optional={"c": st.lists(st.sampled_from(["1", "12", "24"]), max_size=3)},
)
junk = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=8)
trade_frame = st.lists(valid_trade | junk, max_size=8).map(lambda data: json.dumps({"type": "trade", "data": data}))
frame = trade_frame | st.sampled_from(['{"type":"ping"}', '{"type":"error","msg":"x"}', '{"type":"news"}',
                                       "[]", "not json", '{"type":"trade","data":{}}']) | st.text(max_size=30)


def end_offsets(settings, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python(settings))
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def kafka_sink_settings(services, tmp_path_factory):
    from tests.conftest import isolated_settings
    from ticklake.topics import ensure_topics

    isolated = isolated_settings(services, tmp_path_factory.mktemp("property"))
    ensure_topics(isolated)
    return isolated


@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(frame, min_size=1, max_size=12))
def test_every_trade_of_arbitrary_frames_lands_once_in_trades_or_dead_letters(kafka_sink_settings, frames):
    settings = kafka_sink_settings
    before = (end_offsets(settings, settings.kafka.trades_topic), end_offsets(settings, settings.kafka.dead_letter_topic))
    sink = KafkaFrameSink(settings, ProducerMetrics(), frame_rules(settings, replay=False))
    for raw in frames:
        sink.handle(raw, NOW)
    stats = sink.close()

    expected = [parse_frame(raw, NOW, FrameRules(max_clock_skew_ms=settings.producer.max_clock_skew_seconds * 1000))
                for raw in frames]
    trades = sum(len(p.trades) for p in expected)
    letters = sum(len(p.dead_letters) for p in expected)
    after = (end_offsets(settings, settings.kafka.trades_topic), end_offsets(settings, settings.kafka.dead_letter_topic))
    assert stats.trades_produced == trades and stats.delivery_errors == 0
    assert (after[0] - before[0], after[1] - before[1]) == (trades, letters)
    elements = sum(len(json.loads(raw)["data"]) for raw, p in zip(frames, expected) if p.kind == "trade")
    trade_letters = sum(len(p.dead_letters) for p in expected if p.kind == "trade")
    assert trades + trade_letters == elements
