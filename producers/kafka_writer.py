"""Kafka side of the producer: trades keyed by symbol, dead letters, delivery accounting."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from kafka import KafkaProducer

from producers.frames import DeadLetter
from producers.metrics import ProducerMetrics
from schemas.models import Trade
from ticklake.config import KafkaSettings

log = logging.getLogger("ticklake.producer")


@dataclass
class DeliveryCounts:
    trades_acked: int = 0
    dead_letters_acked: int = 0
    failed: int = 0


def trade_value(trade: Trade) -> bytes:
    return json.dumps(trade.model_dump(), separators=(",", ":")).encode()


class KafkaWriter:
    """Sends asynchronously; acknowledgements and failures are counted in callbacks."""

    def __init__(self, kafka: KafkaSettings, metrics: ProducerMetrics) -> None:
        self.topic = kafka.trades_topic
        self.dead_letter_topic = kafka.dead_letter_topic
        self.metrics = metrics
        self.counts = DeliveryCounts()
        self._lock = threading.Lock()
        self._producer = KafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            retries=2**31 - 1,
            delivery_timeout_ms=120_000,
            max_in_flight_requests_per_connection=5,
            compression_type=kafka.compression,
            linger_ms=10,
            batch_size=256 * 1024,
            client_id="ticklake-producer",
        )

    def send_trade(self, trade: Trade) -> None:
        future = self._producer.send(self.topic, key=trade.symbol.encode(), value=trade_value(trade))
        received = trade.received_time_ms / 1000
        future.add_callback(self._trade_acked, received, trade.symbol, trade.trade_time_ms)
        future.add_errback(self._failed, "trade", trade_value(trade))

    def send_dead_letter(self, letter: DeadLetter) -> None:
        future = self._producer.send(self.dead_letter_topic, value=letter.to_json())
        future.add_callback(self._dead_letter_acked)
        future.add_errback(self._failed, "dead letter", letter.to_json())

    def _trade_acked(self, received_s: float, symbol: str, trade_time_ms: int, _metadata) -> None:
        with self._lock:
            self.counts.trades_acked += 1
        self.metrics.trades_produced.inc()
        self.metrics.produce_latency.observe(max(0.0, time.time() - received_s))
        self.metrics.last_trade.labels(symbol).set(trade_time_ms / 1000)

    def _dead_letter_acked(self, _metadata) -> None:
        with self._lock:
            self.counts.dead_letters_acked += 1

    def _failed(self, what: str, value: bytes, error: Exception) -> None:
        with self._lock:
            self.counts.failed += 1
        self.metrics.delivery_errors.inc()
        log.error("Kafka refused a %s after retries (%s): %s", what, error, value[:2000].decode(errors="replace"))

    def flush(self, timeout: float | None = None) -> None:
        self._producer.flush(timeout=timeout)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()
