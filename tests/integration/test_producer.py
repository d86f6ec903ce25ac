"""The producer against the local feed and a real Kafka broker."""
from __future__ import annotations

import asyncio
import json

import pytest

from producers.producer import Producer, ProducerOptions, run_producer
from tests.feeds import RecordingFeed
from ticklake.tools.feed import FeedOptions, running_feed
from ticklake.topics import read_topic

pytestmark = pytest.mark.integration


async def feed_and_produce(settings, feed_options: FeedOptions, max_trades: int, producer_options=None):
    """The feed on a free port and a producer reading it until ``max_trades``; (producer, feed)."""
    async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=feed_options) as feed:
        producer = Producer(settings, feed.url, max_trades=max_trades, idle_timeout=15, options=producer_options)
        await producer.run()
    return producer, feed


def read_records(settings, topic: str) -> list:
    """Every record of ``topic``, in (partition, offset) order."""
    return sorted(read_topic(settings, topic), key=lambda r: (r.partition, r.offset))


def dead_letters(settings) -> list[dict]:
    return [json.loads(r.value) for r in read_records(settings, settings.kafka.dead_letter_topic)]


def expected_trade(element: dict, default_exchange: str) -> dict:
    symbol = element["s"]
    return {"symbol": symbol, "price": element["p"], "volume": float(element["v"]), "trade_time_ms": element["t"],
            "conditions": element.get("c"), "exchange": symbol.split(":")[0] if ":" in symbol else default_exchange}


def per_symbol(trades) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for trade in trades:
        out.setdefault(trade["symbol"], []).append(trade)
    return out


def assert_topic_holds_exactly(settings, sent: list[dict]) -> None:
    """Every trade element in ``sent`` is in the trades topic once, keyed by its symbol, in the feed's
    order per symbol (so all of a symbol's trades are in one partition)."""
    records = read_records(settings, settings.kafka.trades_topic)
    assert all(r.key.decode() == json.loads(r.value)["symbol"] for r in records)
    assert len({(r.key, r.partition) for r in records}) == len({r.key for r in records})
    stored = [{k: v for k, v in json.loads(r.value).items() if k != "received_time_ms"} for r in records]
    assert per_symbol(stored) == per_symbol(expected_trade(e, settings.producer.default_exchange) for e in sent)


def test_every_trade_sent_through_drops_stalls_and_bad_frames_is_in_kafka_once_in_order(pipeline_settings):
    settings = pipeline_settings
    trades = 4000
    feed_options = FeedOptions(rate=3000, max_trades=trades, drop_every_s=1.0, stall_every_s=0.6, stall_for_s=1.0,
                               malformed_ratio=0.03, error_ratio=0.02, seed=11)
    quick = ProducerOptions(backoff_initial_s=0.05, backoff_max_s=0.2, silence_timeout_s=0.5)
    producer, feed = asyncio.run(feed_and_produce(settings, feed_options, trades, quick))
    stats = producer.stats

    assert len(feed.sent) == trades and feed.connections >= 3
    assert feed.malformed_sent > 0 and feed.errors_sent > 0
    assert stats.reconnects >= 2 and stats.delivery_errors == 0
    assert stats.trades_produced == trades
    assert_topic_holds_exactly(settings, feed.sent)

    letters = dead_letters(settings)
    assert len(letters) == feed.malformed_sent == stats.dead_letters
    assert {letter["reason"] for letter in letters} == {"not_json"}
    assert all(letter["raw"] == '{"type":"trade","data":[{"s":' and letter["message"] and letter["received_time_ms"]
               for letter in letters)
    metric = producer.metrics.registry.get_sample_value
    assert metric("ticklake_producer_trades_produced_total") == trades
    assert metric("ticklake_producer_trades_rejected_total", {"reason": "not_json"}) == feed.malformed_sent
    assert metric("ticklake_producer_frames_total", {"type": "error"}) == feed.errors_sent
    assert metric("ticklake_producer_reconnects_total") == stats.reconnects
    assert metric("ticklake_producer_delivery_errors_total") == 0
    observed = metric("ticklake_producer_produce_latency_seconds_count")  # one per frame of trades
    assert 0 < observed <= metric("ticklake_producer_frames_total", {"type": "trade"})
    assert 0 < metric("ticklake_producer_produce_latency_seconds_sum") / observed < 5


def test_the_kafka_python_client_delivers_the_same_way(pipeline_settings):
    settings = pipeline_settings.model_copy(
        update={"kafka": pipeline_settings.kafka.model_copy(update={"client": "kafka-python"})})
    feed_options = FeedOptions(rate=3000, max_trades=1000, malformed_ratio=0.05, seed=13)
    producer, feed = asyncio.run(feed_and_produce(settings, feed_options, 1000))
    assert producer.stats.trades_produced == 1000 and producer.stats.delivery_errors == 0
    assert_topic_holds_exactly(settings, feed.sent)
    assert len(dead_letters(settings)) == feed.malformed_sent > 0


def start_feed_thread(settings, options: FeedOptions):
    """The feed on its own event loop in a thread; returns (url, stop function returning the feed)."""
    import threading

    started, box = threading.Event(), {}

    async def main():
        box["loop"], box["stop"] = asyncio.get_running_loop(), asyncio.Event()
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            box["feed"] = feed
            started.set()
            await box["stop"].wait()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert started.wait(10)

    def stop():
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
        return box["feed"]

    return box["feed"].url, stop


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
    assert len(read_records(settings, settings.kafka.trades_topic)) == received


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
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=feed_options) as feed:
            stats = await run_producer(settings, url=feed.url, max_trades=1500, idle_timeout=10, record_to=recording)
        return stats, feed

    recorded, feed = asyncio.run(record())
    assert recorded.trades_sent == len(feed.sent) == 1500
    assert len(recording.read_text().splitlines()) == recorded.frames

    stats = replay(settings, recording, show_progress=False)
    assert stats.trades_produced == 1500 and stats.delivery_errors == 0
    assert stats.dead_letters == feed.malformed_sent > 0
    assert_topic_holds_exactly(settings, feed.sent)
    assert len(dead_letters(settings)) == feed.malformed_sent


def test_a_recording_served_by_the_feed_keeps_its_times_only_as_a_replay(pipeline_settings, tmp_path):
    settings = pipeline_settings
    recording = tmp_path / "old.ndjson"
    old = [{"s": "AAPL", "p": 101.5, "t": 1_500_000_000_000, "v": 3},
           {"s": "OANDA:EUR_USD", "p": 1.1, "t": 1_500_000_000_001, "v": 0}]
    recording.write_text(json.dumps({"type": "trade", "data": old}) + "\n")

    async def produce(replay: bool):
        options = FeedOptions(rate=1e12, replay_file=recording)
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            return await run_producer(settings, url=feed.url, idle_timeout=1, replay=replay)

    live = asyncio.run(produce(replay=False))
    assert live.trades_produced == 0 and live.dead_letters == 2
    assert {letter["reason"] for letter in dead_letters(settings)} == {"implausible_time"}
    replayed = asyncio.run(produce(replay=True))
    assert replayed.trades_produced == 2 and replayed.dead_letters == 0
    assert_topic_holds_exactly(settings, old)
