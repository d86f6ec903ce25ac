"""Prometheus metrics of one producer (its own registry, so several can live in one process)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ticklake.config import Settings
from ticklake.monitoring.targets import serve_metrics


class ProducerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.frames = Counter("ticklake_producer_frames_total", "Frames received, by type", ["type"], registry=r)
        self.trades_produced = Counter(
            "ticklake_producer_trades_produced_total", "Trades acknowledged by Kafka", registry=r)
        self.trades_rejected = Counter(
            "ticklake_producer_trades_rejected_total", "Frames or trades sent to the dead-letter topic, by reason",
            ["reason"], registry=r)
        self.feed_errors = Counter(
            "ticklake_producer_feed_errors_total", "Error frames received from the feed", registry=r)
        self.delivery_errors = Counter(
            "ticklake_producer_delivery_errors_total", "Records Kafka finally refused after retries", registry=r)
        self.reconnects = Counter("ticklake_producer_reconnects_total", "WebSocket reconnections", registry=r)
        self.connected = Gauge("ticklake_producer_connected", "1 while the WebSocket is open", registry=r)
        self.queue_depth = Gauge(
            "ticklake_producer_queue_depth", "Frames waiting between socket reader and Kafka writer", registry=r)
        # Backpressure: records the Kafka client holds unacknowledged, and the time the producer
        # waited for room in it (brokers away, or too few in sync for acks=all).
        self.kafka_pending = Gauge(
            "ticklake_producer_kafka_pending_records", "Records handed to the Kafka client, not yet acknowledged",
            registry=r)
        self.backpressure_seconds = Counter(
            "ticklake_producer_backpressure_seconds_total",
            "Time spent waiting for room in the Kafka client's buffer (producer.buffer_records)", registry=r)
        self.produce_latency = Histogram(
            "ticklake_producer_produce_latency_seconds", "Trades handed to the Kafka client until acknowledged",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=r)
        self.last_trade = Gauge(
            "ticklake_producer_last_trade_timestamp_seconds", "Trade time of the newest trade, per symbol",
            ["symbol"], registry=r)
        self.last_trade_received = Gauge(
            "ticklake_producer_last_trade_received_timestamp_seconds",
            "When the newest trade was received (wall clock): the FeedSilent alert", registry=r)

    def serve(self, settings: Settings) -> None:
        serve_metrics(settings, "producer", self.registry, settings.producer.metrics_host, settings.producer.metrics_port)
