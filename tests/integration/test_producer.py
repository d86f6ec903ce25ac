"""The producer against the local feed and a real Kafka broker."""
from __future__ import annotations

import asyncio
import json

import pytest

from producers.feed import FeedOptions, serve
from producers.producer import ProducerOptions, run_producer
from tests import reference
from ticklake.demo import free_port

pytestmark = pytest.mark.integration


async def feed_and_produce(settings, feed_options: FeedOptions, max_trades: int, producer_options=None):
    port, ready, stop = free_port(), asyncio.Event(), asyncio.Event()
    feed_task = asyncio.create_task(
        serve(settings, host="127.0.0.1", port=port, options=feed_options, ready=ready, stop=stop))
    await ready.wait()
    stats = await run_producer(settings, url=f"ws://127.0.0.1:{port}", max_trades=max_trades, idle_timeout=15,
                               options=producer_options)
    stop.set()
    return stats, await feed_task


def dead_letters(settings) -> list[dict]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False)
    try:
        parts = [TopicPartition(settings.kafka.dead_letter_topic, p)
                 for p in consumer.partitions_for_topic(settings.kafka.dead_letter_topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        letters = []
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=1000).values():
                letters.extend(json.loads(r.value) for r in records)
        return letters
    finally:
        consumer.close()


def per_symbol(elements) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for symbol, price, time_ms, volume in elements:
        out.setdefault(symbol, []).append((price, time_ms, float(volume)))
    return out


def assert_topic_holds_exactly(settings, sent: list[dict]) -> None:
    """Every trade element in ``sent`` is in the trades topic once, in order per symbol, one partition each."""
    stored, others = reference.read_topic(settings.kafka.bootstrap_servers, settings.kafka.trades_topic)
    assert others == []
    stored.sort(key=lambda t: (t.partition, t.offset))
    assert per_symbol((t.symbol, t.price, t.time_ms, t.volume) for t in stored) == \
        per_symbol((e["s"], e["p"], e["t"], e["v"]) for e in sent)
    assert all(len({t.partition for t in stored if t.symbol == s}) == 1 for s in {t.symbol for t in stored})


def test_every_trade_sent_through_drops_stalls_and_bad_frames_is_in_kafka_once_in_order(pipeline_settings):
    settings = pipeline_settings
    trades = 4000
    feed_options = FeedOptions(rate=3000, max_trades=trades, drop_every_s=1.0, stall_every_s=0.6, stall_for_s=1.0,
                               malformed_ratio=0.03, error_ratio=0.02, seed=11)
    quick = ProducerOptions(backoff_initial_s=0.05, backoff_max_s=0.2, silence_timeout_s=0.5)
    stats, feed = asyncio.run(feed_and_produce(settings, feed_options, trades, quick))

    assert len(feed.sent) == trades and feed.connections >= 3
    assert feed.malformed_sent > 0 and feed.errors_sent > 0
    assert stats.reconnects >= 2 and stats.delivery_errors == 0
    assert stats.trades_produced == trades
    assert_topic_holds_exactly(settings, feed.sent)

    letters = dead_letters(settings)
    assert len(letters) == feed.malformed_sent == stats.dead_letters
    assert {letter["reason"] for letter in letters} == {"not_json"}
