"""The producer's connection handling against the local feed, without Kafka: frames go to a
recording (``record_to``), which holds exactly what the producer received."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal

import pytest

from ticklake.tools.feed import FeedOptions, running_feed
from tests.feeds import RecordingFeed
from producers.finnhub import redact
from producers.producer import Producer, ProducerOptions, backoff_delay, run_producer
from ticklake.errors import UserError

QUICK = ProducerOptions(backoff_initial_s=0.05, backoff_max_s=0.2, silence_timeout_s=0.5, subscribe_spacing_s=0)


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario, 60))


def recorded_trades(path) -> list[dict]:
    trades = []
    for line in path.read_text().splitlines():
        try:
            frame = json.loads(line)
        except ValueError:
            continue
        if frame.get("type") == "trade":
            trades.extend(frame["data"])
    return trades


def test_every_trade_arrives_once_in_order_through_drops_stalls_and_bad_frames(settings, tmp_path):
    recording = tmp_path / "frames.ndjson"
    feed_options = FeedOptions(rate=1000, max_trades=1500, drop_every_s=0.5, stall_every_s=0.4, stall_for_s=1.0,
                               malformed_ratio=0.03, error_ratio=0.02, seed=4)

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=feed_options) as feed:
            stats = await run_producer(settings, url=feed.url, max_trades=1500, idle_timeout=10, options=QUICK,
                                       record_to=recording)
        return feed, stats

    feed, stats = run(scenario())
    assert feed.connections >= 3 and stats.reconnects >= 2  # drops and silences both reconnect
    assert stats.trades_sent == len(feed.sent) == 1500
    assert recorded_trades(recording) == feed.sent
    assert {trade["s"] for trade in feed.sent} == set(settings.producer.symbols)  # resubscribed every time


def test_stops_when_the_feed_goes_idle(settings, tmp_path):
    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed,
                                options=FeedOptions(rate=2000, max_trades=50)) as feed:
            return await run_producer(settings, url=feed.url, idle_timeout=0.5, options=QUICK,
                                      record_to=tmp_path / "frames.ndjson")

    stats = run(scenario())
    assert stats.trades_sent == 50 and stats.reconnects == 0


def test_sigterm_stops_reading_and_keeps_what_was_received(settings, tmp_path):
    recording = tmp_path / "frames.ndjson"

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed,
                                options=FeedOptions(rate=2000)) as feed:
            producer = Producer(settings, feed.url, options=QUICK, record_to=recording)
            task = asyncio.create_task(producer.run())
            while not getattr(producer, "stats", None) or producer.stats.trades_sent < 200:
                await asyncio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)  # the producer's handler is installed while it runs
            return await task

    stats = run(scenario())
    assert stats.trades_sent >= 200 and len(recorded_trades(recording)) == stats.trades_sent


def test_a_failing_writer_stops_the_producer_instead_of_hanging(settings, tmp_path):
    class Broken(Producer):
        def _sink(self):
            sink = super()._sink()
            sink.handle = lambda raw, received_ms: (_ for _ in ()).throw(RuntimeError("disk full"))
            return sink

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed,
                                options=FeedOptions(rate=2000)) as feed:
            await Broken(settings, feed.url, options=QUICK, record_to=tmp_path / "frames.ndjson").run()

    with pytest.raises(RuntimeError, match="disk full"):
        run(scenario())


def test_a_full_kafka_client_makes_frames_wait_counted_without_blocking_the_event_loop(settings, tmp_path):
    recording = tmp_path / "frames.ndjson"
    room = {"open": False}

    class Full(Producer):
        def _sink(self):
            sink = super()._sink()
            sink.has_room = lambda: room["open"]
            return sink

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed,
                                options=FeedOptions(rate=2000, max_trades=300)) as feed:
            producer = Full(settings, feed.url, max_trades=300, idle_timeout=5, options=QUICK, record_to=recording)
            task = asyncio.create_task(producer.run())
            turns = 0
            while not getattr(producer, "stats", None) or producer.stats.frames == 0:
                await asyncio.sleep(0.01)
            for _ in range(50):  # the loop keeps turning while the writer waits
                await asyncio.sleep(0.01)
                turns += 1
            handled, waited = producer.stats.frames, producer.metrics.registry.get_sample_value(
                "ticklake_producer_backpressure_seconds_total")
            room["open"] = True
            return feed, await task, handled, waited, turns

    feed, stats, handled, waited, turns = run(scenario())
    assert handled == 1 and turns == 50 and waited >= 0.3  # one frame in, then the wait, counted as it went
    assert stats.trades_sent == len(feed.sent) == 300 and recorded_trades(recording) == feed.sent


def test_the_token_never_shows_in_logs_or_errors(settings, tmp_path, caplog):
    async def unreachable():
        producer = Producer(settings, "ws://127.0.0.1:9/?token=SECRET", options=QUICK,
                            record_to=tmp_path / "frames.ndjson")
        task = asyncio.create_task(producer.run())
        while not getattr(producer, "stats", None) or producer.stats.reconnects < 2:
            await asyncio.sleep(0.05)
        producer.stopping.set()
        return await task

    with caplog.at_level(logging.INFO, logger="ticklake.producer"):
        run(unreachable())
        with pytest.raises(UserError) as error:
            run(run_producer(settings, url="http://x/?token=SECRET bad", record_to=tmp_path / "frames.ndjson"))
    assert "token=***" in caplog.text and "token=***" in str(error.value)
    assert "SECRET" not in caplog.text + str(error.value)


def test_token_is_redacted_from_urls_in_messages():
    assert redact("wss://ws.finnhub.io?token=abc123&x=1") == "wss://ws.finnhub.io?token=***&x=1"
    assert redact("wss://h?token=abc isn't a valid URI") == "wss://h?token=*** isn't a valid URI"


def test_more_symbols_than_one_connection_takes_are_refused_at_start(settings):
    many = settings.model_copy(update={"producer": settings.producer.model_copy(
        update={"symbols": [f"S{i}" for i in range(51)]})})
    with pytest.raises(UserError, match="51 symbols.*at most 50"):
        Producer(many, "ws://127.0.0.1:1", options=ProducerOptions(max_symbols=50))


def test_live_data_is_checked_against_the_clock_and_replays_are_not(settings):
    assert Producer(settings, "ws://x").rules.max_clock_skew_ms == settings.producer.max_clock_skew_seconds * 1000
    assert Producer(settings, "ws://x", replay=True).rules.max_clock_skew_ms is None


def test_each_producer_has_its_own_metrics(settings):
    names = {"ticklake_producer_frames", "ticklake_producer_trades_produced", "ticklake_producer_trades_rejected",
             "ticklake_producer_delivery_errors", "ticklake_producer_reconnects", "ticklake_producer_connected",
             "ticklake_producer_queue_depth", "ticklake_producer_produce_latency_seconds",
             "ticklake_producer_kafka_pending_records", "ticklake_producer_backpressure_seconds",
             "ticklake_producer_last_trade_timestamp_seconds", "ticklake_producer_last_trade_received_timestamp_seconds"}
    first, second = Producer(settings, "ws://x"), Producer(settings, "ws://x")
    first.metrics.reconnects.inc()
    assert names <= {metric.name for metric in first.metrics.registry.collect()}
    assert second.metrics.registry.get_sample_value("ticklake_producer_reconnects_total") == 0


def test_backoff_grows_is_capped_and_jittered():
    options, rng = ProducerOptions(backoff_initial_s=0.5, backoff_max_s=30), random.Random(1)
    delays = [backoff_delay(attempt, options, rng) for attempt in range(12)]
    assert 0.25 <= delays[0] <= 0.5 and all(d <= 30 for d in delays) and delays[-1] >= 15
    assert len({round(backoff_delay(3, options, rng), 6) for _ in range(20)}) > 1


def test_an_unreachable_feed_counts_as_idle(settings, tmp_path):
    stats = run(run_producer(settings, url="ws://127.0.0.1:9", idle_timeout=0.5, options=QUICK,
                             record_to=tmp_path / "frames.ndjson"))
    assert stats.reconnects >= 1 and stats.frames == 0
