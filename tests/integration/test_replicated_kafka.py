"""A three-broker KRaft cluster losing brokers under load (run on a cluster of its own:
`make test-brokers`): a kill -9 of one broker and of the busiest partition's leader while the
feed, the producer and the streaming job run loses and doubles nothing; with two of three away
the producer waits, says so in its metrics, and loses nothing once they return. Skipped with
fewer than three brokers (kafka.brokers)."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time

import pytest

from ticklake.tools.feed import FeedOptions
from producers.producer import Producer
from tests import reference
from tests.integration.test_producer import assert_topic_holds_exactly, dead_letters, start_feed_thread
from tests.integration.test_stream_exactness import kill_group, start_job, wait_until_stored
from tests.stores import assert_stores_hold_exactly
from ticklake import services as svc
from ticklake.config import Settings
from ticklake.security import kafka_python, librdkafka
from ticklake.services.kafka import kafka_services

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(Settings().kafka.brokers < 3, reason="needs three brokers: make test-brokers")]


def partitions(settings) -> dict[int, object]:
    """The trades topic's partitions as the cluster describes them (leader, replicas, isrs)."""
    from confluent_kafka.admin import AdminClient

    topic = settings.kafka.trades_topic
    return dict(AdminClient(librdkafka(settings, "admin")).list_topics(topic, timeout=30).topics[topic].partitions)


def busiest_partition(settings) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python(settings), enable_auto_commit=False)
    try:
        topic = settings.kafka.trades_topic
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        return max(ends, key=ends.get).partition
    finally:
        consumer.close()


def kill_9(settings, node_id: int) -> None:
    """SIGKILL for the broker with KRaft node id ``node_id`` (node n + 1)."""
    broker = kafka_services(settings)[node_id - 1]
    pid = broker.running_pid()
    assert pid is not None, f"{broker.name} is not running"
    os.kill(pid, signal.SIGKILL)
    while broker.running_pid() is not None:
        time.sleep(0.1)


def wait_all_in_sync(settings, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not all(len(p.isrs) == settings.kafka.brokers for p in partitions(settings).values()):
        assert time.monotonic() < deadline, f"replicas not back in sync: {partitions(settings)}"
        time.sleep(1)


class ProducerThread:
    """A producer on an event loop of its own, so that it can block while the test watches it."""

    def __init__(self, settings, url: str, max_trades: int) -> None:
        self.producer = Producer(settings, url, max_trades=max_trades, idle_timeout=60)
        self.stats = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.stats = asyncio.run(self.producer.run())

    def metric(self, name: str) -> float:
        return self.producer.metrics.registry.get_sample_value(name) or 0.0

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the producer did not finish"


def assert_producer_reconciles(settings, feed, stats) -> None:
    """Received = produced + dead letters, and the topics hold exactly that."""
    assert stats.delivery_errors == 0
    assert feed.trades_sent + feed.malformed_sent == stats.trades_produced + stats.dead_letters
    assert stats.trades_produced == stats.trades_sent == feed.trades_sent
    assert_topic_holds_exactly(settings, feed.sent)
    assert len(dead_letters(settings)) == stats.dead_letters == feed.malformed_sent


def test_kill_9_of_a_broker_and_of_the_busiest_leader_under_load_loses_and_doubles_nothing(pipeline_settings,
                                                                                           tmp_path):
    settings = pipeline_settings.model_copy(update={"spark": pipeline_settings.spark.model_copy(update={
        "restart_backoff_seconds": 2.0, "max_restart_backoff_seconds": 8.0})})
    assert {len(p.replicas) for p in partitions(settings).values()} == {3}
    trades = 50_000
    url, stop_feed = start_feed_thread(settings, FeedOptions(rate=500, max_trades=trades, malformed_ratio=0.01,
                                                             seed=21))
    log = tmp_path / "job.log"
    job = start_job(settings, log, "--trigger-seconds", "2", "--lake-trigger-seconds", "5")
    rng = random.Random()
    try:
        producer = ProducerThread(settings, url, trades)
        time.sleep(10)
        busiest = partitions(settings)[busiest_partition(settings)]
        follower = rng.choice([node for node in busiest.replicas if node != busiest.leader])
        leader = busiest.leader
        for victim in (follower, leader):  # a broker, then the busiest partition's leader
            produced = producer.metric("ticklake_producer_trades_produced_total")
            kill_9(settings, victim)
            # Fenced after broker.session.timeout.ms (5 s), it leaves the ISRs; two in sync: acks go on.
            deadline = time.monotonic() + 40
            while producer.metric("ticklake_producer_trades_produced_total") < produced + 1000:
                assert time.monotonic() < deadline, f"no acknowledgements with broker {victim} away"
                time.sleep(0.5)
            assert partitions(settings)[busiest.id].leader not in (victim, -1)
            svc.up(settings)
            wait_all_in_sync(settings)
        producer.join(240)
        feed = stop_feed()
        assert_producer_reconciles(settings, feed, producer.stats)

        stored, others = reference.read_topic(settings, settings.kafka.trades_topic)
        assert others == [] and len(stored) == trades
        wait_until_stored(settings, stored, log)
    finally:
        kill_group(job, signal.SIGTERM)
        svc.up(settings)
    assert_stores_hold_exactly(settings, stored)


def test_two_of_three_brokers_away_the_producer_waits_says_so_and_loses_nothing(pipeline_settings):
    settings = pipeline_settings.model_copy(update={"producer": pipeline_settings.producer.model_copy(update={
        "buffer_records": 2000})})
    trades = 12_000
    url, stop_feed = start_feed_thread(settings, FeedOptions(rate=800, max_trades=trades, malformed_ratio=0.01,
                                                             seed=23))
    try:
        producer = ProducerThread(settings, url, trades)
        time.sleep(4)
        assert producer.metric("ticklake_producer_trades_produced_total") > 0
        victims = random.Random().sample(range(1, settings.kafka.brokers + 1), 2)
        for victim in victims:
            kill_9(settings, victim)
        time.sleep(3)  # records in flight settle
        produced = producer.metric("ticklake_producer_trades_produced_total")
        waited = producer.metric("ticklake_producer_backpressure_seconds_total")
        time.sleep(6)
        # No acknowledgement without two replicas in sync: the client's buffer is full (the producer
        # waits from 90 % of it) and frames queue up behind it.
        assert producer.metric("ticklake_producer_trades_produced_total") == produced
        assert producer.metric("ticklake_producer_backpressure_seconds_total") - waited > 4
        assert producer.metric("ticklake_producer_kafka_pending_records") >= 2000 * 0.9
        assert producer.metric("ticklake_producer_queue_depth") > 0
        svc.up(settings)
        producer.join(240)
        feed = stop_feed()
    finally:
        svc.up(settings)
    assert_producer_reconciles(settings, feed, producer.stats)
