"""Where the frames a connection receives go: Kafka (validated), or a recording file (raw)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from producers.frames import FrameRules, parse_frame
from producers.kafka_writer import make_writer
from producers.metrics import ProducerMetrics
from ticklake.config import Settings
from ticklake.topics import ensure_topics

log = logging.getLogger("ticklake.producer")


@dataclass
class ProducerStats:
    frames: int = 0
    trades_sent: int = 0
    trades_produced: int = 0
    dead_letters: int = 0
    delivery_errors: int = 0
    reconnects: int = 0


class FrameSink(Protocol):
    stats: ProducerStats

    def handle(self, raw: str | bytes, received_ms: int) -> None: ...

    def tick(self) -> None:
        """Bring the metrics up to date (called between frames)."""

    def has_room(self) -> bool:
        """False while the next frame should wait (Kafka is not acknowledging)."""

    def close(self) -> ProducerStats: ...


def frame_rules(settings: Settings, *, replay: bool, max_frame_bytes: int = 1 << 20) -> FrameRules:
    """Live data must be near the wall clock; a replay keeps the times it was recorded with."""
    return FrameRules(
        default_exchange=settings.producer.default_exchange,
        max_frame_bytes=max_frame_bytes,
        max_clock_skew_ms=None if replay else settings.producer.max_clock_skew_seconds * 1000,
    )


class KafkaFrameSink:
    """Validates each frame: trades to the trades topic, everything else to the dead-letter topic."""

    def __init__(self, settings: Settings, metrics: ProducerMetrics, rules: FrameRules) -> None:
        ensure_topics(settings)  # idempotent; without it a send would wait a minute for metadata
        self.metrics = metrics
        self.rules = rules
        self.stats = ProducerStats()
        self.writer = make_writer(settings, metrics)
        self._last_trade: dict[str, object] = {}  # the gauge's child per symbol

    def handle(self, raw: str | bytes, received_ms: int) -> None:
        self.stats.frames += 1
        frame = parse_frame(raw, received_ms, self.rules)
        self.metrics.frames.labels(frame.kind).inc()
        if frame.kind == "error":
            self.metrics.feed_errors.inc()
            log.error("the feed reported an error: %s", frame.error_message)
        self.writer.send_trades(frame.trades)
        if frame.trades:
            self.metrics.last_trade_received.set(received_ms / 1000)
        newest = {trade["symbol"]: trade["trade_time_ms"] for trade in frame.trades}
        for symbol, time_ms in newest.items():
            if symbol not in self._last_trade:
                self._last_trade[symbol] = self.metrics.last_trade.labels(symbol)
            self._last_trade[symbol].set(time_ms / 1000)
        for letter in frame.dead_letters:
            self.writer.send_dead_letter(letter)
            self.metrics.trades_rejected.labels(letter.reason).inc()
        self.stats.trades_sent += len(frame.trades)
        self.stats.dead_letters += len(frame.dead_letters)

    def tick(self) -> None:
        self.writer.tick()

    def has_room(self) -> bool:
        return self.writer.has_room()

    def close(self) -> ProducerStats:
        """Flush: afterwards every trade handled is acknowledged or counted as a delivery error."""
        self.writer.close()
        self.stats.trades_produced = self.writer.counts.trades_acked
        self.stats.delivery_errors = self.writer.counts.failed
        return self.stats


class RecordingSink:
    """Writes every raw frame, one per line (NDJSON), for debugging and ``ticklake replay``."""

    def __init__(self, path: Path, metrics: ProducerMetrics) -> None:
        self.metrics = metrics
        self.stats = ProducerStats()
        self.rules = FrameRules(max_clock_skew_ms=None)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(path, "a", encoding="utf-8")

    def handle(self, raw: str | bytes, received_ms: int) -> None:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, (bytes, bytearray)) else raw
        # A frame is one line; JSON allows a blank for a newline, so valid frames stay valid.
        self.file.write(text.replace("\r", " ").replace("\n", " ") + "\n")
        self.stats.frames += 1
        self.metrics.frames.labels("recorded").inc()
        self.stats.trades_sent += len(parse_frame(raw, received_ms, self.rules).trades)

    def tick(self) -> None:
        pass

    def has_room(self) -> bool:
        return True

    def close(self) -> ProducerStats:
        self.file.close()
        return self.stats
