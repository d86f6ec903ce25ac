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


def start_feed_thread(settings, options: FeedOptions):
    """The feed on its own event loop in a thread; returns (url, feed holder, stop function)."""
    import threading

    port, holder, loop_box = free_port(), {}, {}
    started = threading.Event()

    async def main():
        loop_box["loop"], loop_box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        ready = asyncio.Event()
        task = asyncio.create_task(serve(settings, host="127.0.0.1", port=port, options=options, ready=ready,
                                         stop=loop_box["stop"]))
        await ready.wait()
        started.set()
        holder["feed"] = await task

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert started.wait(10)

    def stop():
        loop_box["loop"].call_soon_threadsafe(loop_box["stop"].set)
        thread.join(10)
        return holder["feed"]

    return f"ws://127.0.0.1:{port}", stop


def test_sigterm_mid_stream_loses_nothing_received_and_never_shows_the_token(pipeline_settings):
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    settings = pipeline_settings
    url, stop_feed = start_feed_thread(settings, FeedOptions(rate=2000, seed=5))
    token = "tok-SECRET-4711"
    env = {**os.environ, **settings.as_environment(), "TICKLAKE_PRODUCER__URL": url, "FINNHUB_TOKEN": token}
    process = subprocess.Popen([sys.executable, "-m", "ticklake.cli", "produce"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(4)
        assert token not in open(f"/proc/{process.pid}/cmdline").read()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
        stop_feed()
    assert process.returncode == 0, output
    assert token not in output and "token=***" in output
    stats = dict(re.findall(r"(\w+)=(\d+)", output.split("producer stopped:")[-1]))
    received, produced = int(stats["trades_sent"]), int(stats["trades_produced"])
    assert received > 1000 and produced == received and stats["delivery_errors"] == "0"
    stored, _ = reference.read_topic(settings.kafka.bootstrap_servers, settings.kafka.trades_topic)
    assert len(stored) == received


@pytest.mark.slow
def test_broker_restart_while_producing_loses_and_doubles_nothing(pipeline_settings):
    import time

    from ticklake import services as svc
    from ticklake.services.kafka import KafkaService

    settings = pipeline_settings
    trades = 6000
    url, stop_feed = start_feed_thread(settings, FeedOptions(rate=500, max_trades=trades, seed=9))

    async def produce_while_broker_restarts():
        producer = asyncio.create_task(run_producer(settings, url=url, max_trades=trades, idle_timeout=60))
        await asyncio.sleep(3)
        await asyncio.to_thread(KafkaService(settings).stop, lambda message: None)
        await asyncio.sleep(4)
        await asyncio.to_thread(svc.up, settings)
        return await producer

    started = time.monotonic()
    try:
        stats = asyncio.run(produce_while_broker_restarts())
    finally:
        feed = stop_feed()
        svc.up(settings)
    assert time.monotonic() - started > 10  # the broker really was away mid-stream
    assert len(feed.sent) == trades and stats.trades_sent == trades
    assert stats.trades_produced == trades and stats.delivery_errors == 0
    assert_topic_holds_exactly(settings, feed.sent)


def test_record_then_replay_publishes_the_same_trades_and_dead_letters(pipeline_settings, tmp_path):
    from producers.replay import replay

    settings = pipeline_settings
    recording = tmp_path / "frames.ndjson"
    feed_options = FeedOptions(rate=3000, max_trades=1500, malformed_ratio=0.05, error_ratio=0.02, seed=21)

    async def record():
        port, ready, stop = free_port(), asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve(settings, host="127.0.0.1", port=port, options=feed_options,
                                         ready=ready, stop=stop))
        await ready.wait()
        stats = await run_producer(settings, url=f"ws://127.0.0.1:{port}", max_trades=1500, idle_timeout=10,
                                   record_to=recording)
        stop.set()
        return stats, await task

    recorded, feed = asyncio.run(record())
    assert recorded.trades_sent == len(feed.sent) == 1500
    assert len(recording.read_text().splitlines()) == recorded.frames

    stats = replay(settings, recording, show_progress=False)
    assert stats.trades_produced == 1500 and stats.delivery_errors == 0
    assert stats.dead_letters == feed.malformed_sent > 0
    assert_topic_holds_exactly(settings, feed.sent)
    assert len(dead_letters(settings)) == feed.malformed_sent
