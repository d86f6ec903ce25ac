"""The PyFlink job reads the trades topic through Flink's Kafka connector, in its own venv."""
from __future__ import annotations

import json
import random

import pytest

from jobs.flink_runner import run_flink_smoke
from schemas.models import Trade

pytestmark = pytest.mark.integration


def test_flink_counts_every_trade_per_symbol(pipeline_settings, tmp_path):
    from kafka import KafkaProducer

    settings = pipeline_settings
    rng = random.Random(3)
    expected: dict[str, list[float]] = {}
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    for i in range(500):
        symbol = rng.choice(["AAPL", "MSFT", "BINANCE:BTCUSDT"])
        trade = Trade(symbol=symbol, price=round(rng.uniform(10, 20), 4), volume=1.0, trade_time_ms=1_700_000_000_000 + i,
                      exchange="US", received_time_ms=1_700_000_000_100 + i, conditions=["1"] if i % 2 else None)
        producer.send(settings.kafka.trades_topic, key=symbol.encode(), value=trade.model_dump_json().encode())
        expected.setdefault(symbol, []).append(trade.price)
    producer.send(settings.kafka.trades_topic, value=b"not a trade")  # skipped, not fatal
    producer.flush()
    producer.close()

    result = run_flink_smoke(settings, tmp_path / "flink.json")

    assert result == {
        symbol: {"trades": len(prices), "low": min(prices), "high": max(prices)} for symbol, prices in expected.items()
    }
    assert json.loads((tmp_path / "flink.json").read_text().splitlines()[0])["symbol"] in expected
