"""Read the real-time job's outputs from Kafka: alerts, live bars, rejected-record counts.

Every reader is ``read_committed``: it sees what the exactly-once job has committed, never a
record of a transaction that was aborted (a crash) or is still open (before its checkpoint).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from ticklake.config import Settings
from ticklake.security import kafka_python
from ticklake.topics import read_topic


@dataclass(frozen=True)
class Alert:
    alert_id: str
    rule: str
    symbol: str
    event_time: datetime
    values: dict[str, float]

    @property
    def detail(self) -> str:
        return ", ".join(f"{k}={v:g}" for k, v in sorted(self.values.items()) if not k.endswith("_ms"))


ALERT_COLUMNS = ["event_time", "rule", "symbol", "detail", "alert_id"]
ALERT_JSON_COLUMNS = ["alert_id", "rule", "symbol", "event_time", "values"]


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def alerts(settings: Settings, since: datetime | None = None, follow: bool = False) -> Iterator[Alert]:
    """Committed alerts in the order they were written; ``since`` filters on the alert's event time."""
    since_ms = int(since.timestamp() * 1000) if since else None
    for record in read_topic(settings, settings.flink.alerts_topic, since_ms=since_ms, follow=follow,
                             client_id="ticklake-live"):
        if record.value is None:
            continue
        value = json.loads(record.value)
        alert = Alert(value["alert_id"], value["rule"], value["symbol"], parse_time(value["event_time"]),
                      value["values"])
        if since is None or alert.event_time >= since:
            yield alert


def latest_by_key(settings: Settings, topic: str) -> dict[tuple, dict]:
    """The newest committed value of each key of an upsert topic (``{key fields}: value``)."""
    latest: dict[tuple, dict] = {}
    for record in read_topic(settings, topic, client_id="ticklake-live"):
        key = tuple(json.loads(record.key).values())
        if record.value is None:
            latest.pop(key, None)
        else:
            latest[key] = json.loads(record.value)
    return latest


def live_bars(settings: Settings) -> dict[tuple[str, datetime], dict]:
    """Every live bar at its newest committed value, by (symbol, window_start)."""
    return {(symbol, parse_time(start)): bar for (symbol, start), bar in latest_by_key(settings, settings.flink.bars_topic).items()}


def rejected_counts(settings: Settings) -> dict[str, int]:
    return {reason: value["records"] for (reason,), value in latest_by_key(settings, settings.flink.rejects_topic).items()}


def lag(settings: Settings, group: str) -> int:
    """Records of the trades topic past the offsets ``group`` has committed (the real-time job
    commits its offsets with each checkpoint, so at 0 its outputs cover the whole topic)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    topic = settings.kafka.trades_topic
    admin = KafkaAdminClient(**kafka_python(settings), client_id="ticklake-live")
    consumer = KafkaConsumer(**kafka_python(settings), enable_auto_commit=False)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        committed = {tp: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(end - max(committed.get(tp, 0), 0) for tp, end in consumer.end_offsets(partitions).items())
    finally:
        admin.close()
        consumer.close()
