"""Kafka side of the producer: trades keyed by symbol, dead letters, delivery accounting.

Two clients behind one interface (``kafka.client`` setting): kafka-python, the project's
default client library, and confluent-kafka (librdkafka), which the producer benchmark
showed to be needed for the throughput target (docs/BENCHMARKS.md). Both run with acks=all,
idempotence, unlimited retries within a delivery timeout, and compression.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from producers.frames import DeadLetter, ValidTrade
from producers.metrics import ProducerMetrics
from ticklake.config import KafkaSettings

log = logging.getLogger("ticklake.producer")

DELIVERY_TIMEOUT_MS = 120_000


@dataclass
class DeliveryCounts:
    trades_acked: int = 0
    dead_letters_acked: int = 0
    failed: int = 0


class KafkaWriter:
    """Sends asynchronously; acknowledgements and failures are counted in delivery callbacks.

    Per-record work is kept to counting: Prometheus counters are brought up to date by
    ``publish_metrics`` (once a frame), and one acknowledgement in ``LATENCY_SAMPLE`` feeds the
    latency histogram.
    """

    LATENCY_SAMPLE = 16

    def __init__(self, kafka: KafkaSettings, metrics: ProducerMetrics) -> None:
        self.topic = kafka.trades_topic
        self.dead_letter_topic = kafka.dead_letter_topic
        self.metrics = metrics
        self.counts = DeliveryCounts()
        self._published = DeliveryCounts()
        self._lock = threading.Lock()

    def send_trades(self, trades: list[ValidTrade]) -> None:
        for trade in trades:
            self._send(self.topic, trade.symbol.encode(), trade.to_json())

    def send_dead_letter(self, letter: DeadLetter) -> None:
        self._send(self.dead_letter_topic, None, letter.to_json())

    def _acked(self, topic: str, latency_s: float | None) -> None:
        with self._lock:
            if topic == self.topic:
                self.counts.trades_acked += 1
                if latency_s is not None and self.counts.trades_acked % self.LATENCY_SAMPLE == 0:
                    self.metrics.produce_latency.observe(latency_s)
            else:
                self.counts.dead_letters_acked += 1

    def _failed(self, topic: str, value: bytes, error: object) -> None:
        with self._lock:
            self.counts.failed += 1
        what = "trade" if topic == self.topic else "dead letter"
        log.error("Kafka refused a %s after retries (%s): %s", what, error, value[:2000].decode(errors="replace"))

    def publish_metrics(self) -> None:
        with self._lock:
            acked = self.counts.trades_acked - self._published.trades_acked
            failed = self.counts.failed - self._published.failed
            self._published = DeliveryCounts(**vars(self.counts))
        if acked:
            self.metrics.trades_produced.inc(acked)
        if failed:
            self.metrics.delivery_errors.inc(failed)

    # --- what a client defines ----------------------------------------------------------
    def _send(self, topic: str, key: bytes | None, value: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush, then release the client: afterwards every send is acked or counted as failed."""
        raise NotImplementedError


class KafkaPythonWriter(KafkaWriter):
    def __init__(self, kafka: KafkaSettings, metrics: ProducerMetrics) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        super().__init__(kafka, metrics)
        self._send_error = KafkaError
        self._producer = KafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers, acks="all", enable_idempotence=True,
            retries=2**31 - 1, delivery_timeout_ms=DELIVERY_TIMEOUT_MS, max_in_flight_requests_per_connection=5,
            compression_type=kafka.compression, linger_ms=10, batch_size=256 * 1024,
            client_id="ticklake-producer",
        )

    def _send(self, topic, key, value) -> None:
        try:
            future = self._producer.send(topic, key=key, value=value)
        except self._send_error as error:  # no metadata or buffer space within max_block_ms
            self._failed(topic, value, error)
            return
        sent = time.monotonic()
        future.add_callback(lambda _metadata: self._acked(topic, time.monotonic() - sent))
        future.add_errback(lambda error: self._failed(topic, value, error))

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()
        self.publish_metrics()


class ConfluentWriter(KafkaWriter):
    def __init__(self, kafka: KafkaSettings, metrics: ProducerMetrics) -> None:
        from confluent_kafka import KafkaException, Producer

        super().__init__(kafka, metrics)
        self._send_error = KafkaException
        self._producer = Producer({
            "bootstrap.servers": kafka.bootstrap_servers, "acks": "all", "enable.idempotence": True,
            "delivery.timeout.ms": DELIVERY_TIMEOUT_MS, "compression.type": kafka.compression,
            "linger.ms": 10, "batch.size": 1024 * 1024, "queue.buffering.max.messages": 500_000,
            "client.id": "ticklake-producer",
        })
        self._unpolled = 0

    # librdkafka serves delivery reports in the thread that calls poll() or flush(): the
    # producing thread, or close() after it. So the trade path, the hot one, counts without the lock.
    def send_trades(self, trades: list[ValidTrade]) -> None:
        produce, topic, delivered = self._producer.produce, self.topic, self._trade_delivered
        for trade in trades:
            value = trade.to_json()
            try:
                produce(topic, value, trade.symbol.encode(), on_delivery=delivered)
            except (BufferError, self._send_error):  # the careful path waits for room or counts the failure
                self._send(topic, trade.symbol.encode(), value)
        self._served_reports_after(len(trades))

    def _trade_delivered(self, error, message) -> None:
        if error is not None:
            self._failed(message.topic(), message.value() or b"", error)
            return
        counts = self.counts
        counts.trades_acked += 1
        if not counts.trades_acked % self.LATENCY_SAMPLE:
            self.metrics.produce_latency.observe(message.latency())

    def _delivered(self, error, message) -> None:
        if error is not None:
            self._failed(message.topic(), message.value() or b"", error)
        else:
            self._acked(message.topic(), message.latency())

    def _send(self, topic, key, value) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, on_delivery=self._delivered)
                break
            except BufferError:  # local queue full: wait for deliveries (backpressure)
                self._producer.poll(0.05)
            except self._send_error as error:
                self._failed(topic, value, error)
                return
        self._served_reports_after(1)

    def _served_reports_after(self, sent: int) -> None:
        self._unpolled += sent
        if self._unpolled >= 1000:
            self._producer.poll(0)  # serve delivery callbacks
            self._unpolled = 0

    def close(self) -> None:
        remaining = self._producer.flush(DELIVERY_TIMEOUT_MS / 1000 + 10)
        if remaining:
            log.error("%d records still undelivered after the delivery timeout", remaining)
        self.publish_metrics()


CLIENTS = {"kafka-python": KafkaPythonWriter, "confluent-kafka": ConfluentWriter}


def make_writer(kafka: KafkaSettings, metrics: ProducerMetrics) -> KafkaWriter:
    return CLIENTS[kafka.client](kafka, metrics)
