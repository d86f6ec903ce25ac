"""Kafka side of the producer: trades keyed by symbol, dead letters, delivery accounting.

Two clients behind one interface (``kafka.client`` setting): confluent-kafka (librdkafka), the
default, which the producer benchmark showed to be needed for the throughput target
(docs/BENCHMARKS.md), and kafka-python, which the rest of ticklake uses to read topics. Both run with acks=all,
idempotence, unlimited retries within a delivery timeout, and compression.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from producers.frames import DeadLetter, TradeRecord, trade_json
from producers.metrics import ProducerMetrics
from ticklake.config import Settings
from ticklake.logs import librdkafka_logging
from ticklake.security import kafka_python, librdkafka

log = logging.getLogger("ticklake.producer")

DELIVERY_TIMEOUT_MS = 120_000


@dataclass
class DeliveryCounts:
    trades_acked: int = 0
    failed: int = 0  # trades and dead letters Kafka finally refused


class KafkaWriter:
    """Sends asynchronously; acknowledgements and failures are counted as the client reports them.

    Prometheus counters are brought up to date by ``tick``, which the producer calls every 10 ms
    between frames: once per frame would cost more at high rates and lag at low ones.
    """

    def __init__(self, settings: Settings, metrics: ProducerMetrics) -> None:
        kafka = settings.kafka
        self.topic = kafka.trades_topic
        self.dead_letter_topic = kafka.dead_letter_topic
        self.metrics = metrics
        self.counts = DeliveryCounts()
        self._published = DeliveryCounts()
        self._lock = threading.Lock()

    def send_dead_letter(self, letter: DeadLetter) -> None:
        self._send(self.dead_letter_topic, None, letter.to_json())

    def _failed(self, topic: str, value: bytes, error: object) -> None:
        with self._lock:
            self.counts.failed += 1
        what = "trade" if topic == self.topic else "dead letter"
        log.error("Kafka refused a %s after retries (%s): %s", what, error, value[:2000].decode(errors="replace"))

    def tick(self) -> None:
        with self._lock:
            acked = self.counts.trades_acked - self._published.trades_acked
            failed = self.counts.failed - self._published.failed
            self._published = DeliveryCounts(**vars(self.counts))
        if acked:
            self.metrics.trades_produced.inc(acked)
        if failed:
            self.metrics.delivery_errors.inc(failed)

    # --- what a client defines ----------------------------------------------------------
    def send_trades(self, trades: list[TradeRecord]) -> None:
        raise NotImplementedError

    def _send(self, topic: str, key: bytes | None, value: bytes) -> bool:
        """Hand one record to the client; False when it refused it (counted and logged)."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush, then release the client: afterwards every send is acked or counted as failed."""
        raise NotImplementedError

    def has_room(self) -> bool:
        """False while the client holds so many unacknowledged records that the next frame should
        wait (the producer then waits without blocking its event loop)."""
        return True


class KafkaPythonWriter(KafkaWriter):
    """Callbacks per record, in the client's sender thread; one acknowledgement in
    ``LATENCY_SAMPLE`` feeds the latency histogram."""

    LATENCY_SAMPLE = 16

    def __init__(self, settings: Settings, metrics: ProducerMetrics) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        super().__init__(settings, metrics)
        kafka = settings.kafka
        self._send_error = KafkaError
        self._producer = KafkaProducer(
            **kafka_python(settings, "producer"), acks="all", enable_idempotence=True,
            retries=2**31 - 1, delivery_timeout_ms=DELIVERY_TIMEOUT_MS, max_in_flight_requests_per_connection=5,
            compression_type=kafka.compression, linger_ms=10, batch_size=256 * 1024,
            client_id="ticklake-producer",
        )

    def send_trades(self, trades: list[TradeRecord]) -> None:
        for trade in trades:
            self._send(self.topic, trade["symbol"].encode(), trade_json(trade))

    def _send(self, topic, key, value) -> bool:
        try:
            future = self._producer.send(topic, key=key, value=value)
        except self._send_error as error:  # no metadata or buffer space within max_block_ms
            self._failed(topic, value, error)
            return False
        sent = time.monotonic()
        future.add_callback(lambda _metadata: self._acked(topic, time.monotonic() - sent))
        future.add_errback(lambda error: self._failed(topic, value, error))
        return True

    def _acked(self, topic: str, latency_s: float) -> None:
        if topic != self.topic:
            return
        with self._lock:
            self.counts.trades_acked += 1
            if self.counts.trades_acked % self.LATENCY_SAMPLE == 0:
                self.metrics.produce_latency.observe(latency_s)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()
        self.tick()


class ConfluentWriter(KafkaWriter):
    """librdkafka reports a delivery only when it fails (``delivery.report.only.error``): a report
    per acknowledged record cost more than producing the record. A record stays in the client
    (``len(producer)``) until it is acknowledged or its failure is reported, so acknowledged
    trades are those handed over, less failures, less what is still in the client: never more
    than the truth while running (dead letters in flight count against them), exact after a flush.
    Latency is observed once a frame: from handing its records over until as many records as
    were handed over by then are acknowledged.
    """

    def __init__(self, settings: Settings, metrics: ProducerMetrics) -> None:
        from confluent_kafka import KafkaException, Producer

        super().__init__(settings, metrics)
        kafka = settings.kafka
        self._send_error = KafkaException
        self._producer = Producer({
            **librdkafka(settings, "producer"), **librdkafka_logging(), "acks": "all", "enable.idempotence": True,
            "delivery.timeout.ms": DELIVERY_TIMEOUT_MS, "compression.type": kafka.compression,
            "linger.ms": 10, "batch.size": 1024 * 1024,
            "queue.buffering.max.messages": settings.producer.buffer_records,
            "client.id": "ticklake-producer",
            "delivery.report.only.error": True, "on_delivery": self._delivery_failed,
        })
        # Frames wait once the client is this full, so that a frame rarely meets a full buffer.
        self._room_limit = max(1, settings.producer.buffer_records * 9 // 10)
        self._trades_handed_over = self._letters_handed_over = 0  # records the client accepted
        self._reported_failures = self._reported_trade_failures = 0
        self._frames: deque[tuple[int, float]] = deque()  # (records handed over by then, when)

    def send_trades(self, trades: list[TradeRecord]) -> None:
        produce, topic, refused = self._producer.produce, self.topic, 0
        for trade in trades:
            value, key = trade_json(trade), trade["symbol"].encode()
            try:
                produce(topic, value, key)
            except (BufferError, self._send_error):  # the careful path waits for room or counts the failure
                refused += not self._send(topic, key, value)
        if len(trades) > refused:
            self._trades_handed_over += len(trades) - refused
            self._frames.append((self._handed_over(), time.monotonic()))

    def send_dead_letter(self, letter: DeadLetter) -> None:
        self._letters_handed_over += self._send(self.dead_letter_topic, None, letter.to_json())

    def _handed_over(self) -> int:
        return self._trades_handed_over + self._letters_handed_over

    def _send(self, topic, key, value) -> bool:
        while True:
            try:
                self._producer.produce(topic, value=value, key=key)
                return True
            except BufferError:  # local queue full: wait for deliveries (backpressure)
                waited = time.monotonic()
                self._producer.poll(0.05)
                self.metrics.backpressure_seconds.inc(time.monotonic() - waited)
                self.metrics.kafka_pending.set(len(self._producer))
            except self._send_error as error:
                self._failed(topic, value, error)
                return False

    def has_room(self) -> bool:
        return len(self._producer) < self._room_limit

    # librdkafka serves reports in the thread that calls poll() or flush(): the producing thread,
    # or close() after it, so the counts need no lock.
    def _delivery_failed(self, error, message) -> None:
        if error is None:
            return
        self._reported_failures += 1
        self._reported_trade_failures += message.topic() == self.topic
        self._failed(message.topic(), message.value() or b"", error)

    def tick(self) -> None:
        self._producer.poll(0)  # serve failure reports
        in_client = len(self._producer)
        self.metrics.kafka_pending.set(in_client)
        acked = self._handed_over() - self._reported_failures - in_client
        now, frames = time.monotonic(), self._frames
        while frames and frames[0][0] <= acked:
            self.metrics.produce_latency.observe(now - frames.popleft()[1])
        trades_acked = self._trades_handed_over - self._reported_trade_failures - in_client
        self.counts.trades_acked = max(self.counts.trades_acked, trades_acked)
        super().tick()

    def close(self) -> None:
        remaining = self._producer.flush(DELIVERY_TIMEOUT_MS / 1000 + 10)
        if remaining:
            log.error("%d records still undelivered after the delivery timeout", remaining)
        self.tick()


CLIENTS = {"kafka-python": KafkaPythonWriter, "confluent-kafka": ConfluentWriter}


def make_writer(settings: Settings, metrics: ProducerMetrics) -> KafkaWriter:
    return CLIENTS[settings.kafka.client](settings, metrics)
