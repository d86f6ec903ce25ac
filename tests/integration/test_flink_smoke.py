"""The PyFlink job reads the trades topic through Flink's Kafka connector, in its own venv."""
from __future__ import annotations

import json
import random
import re

import pytest

from jobs import flink_runner, flink_smoke
from jobs.flink_runner import run_flink_smoke
from schemas.derive import flink_columns
from schemas.models import Trade
from ticklake.errors import UserError
from ticklake.security import kafka_python

SYMBOLS = ["AAPL", "MSFT", "BINANCE:BTCUSDT", "OANDA:EUR_USD"]


def test_the_smoke_jobs_own_columns_follow_the_trade_model():
    # The launcher passes flink_columns(Trade); the job's fallback for runs by hand must agree.
    assert flink_smoke.TRADE_COLUMNS == flink_columns(Trade)
    assert re.findall(r"`(\w+)`", flink_smoke.TRADE_COLUMNS) == list(Trade.model_fields)


def test_the_table_options_are_quoted():
    ddl = flink_smoke.trades_ddl(flink_smoke.TRADE_COLUMNS, "it's", "127.0.0.1:9092", "g")
    assert "'topic' = 'it''s'" in ddl and "'scan.bounded.mode' = 'latest-offset'" in ddl


def test_a_missing_flink_environment_says_how_to_make_it(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(flink_runner, "FLINK_PYTHON", tmp_path / "no-venv" / "bin" / "python")
    with pytest.raises(UserError, match="bootstrap.sh"):
        run_flink_smoke(settings, tmp_path / "flink.json")


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_flink_counts_every_trade_per_symbol(pipeline_settings, tmp_path):
    from kafka import KafkaProducer

    settings = pipeline_settings
    rng = random.Random(3)
    expected: dict[str, list[float]] = {}
    producer = KafkaProducer(**kafka_python(settings, "producer"))
    for i in range(600):
        symbol = rng.choice(SYMBOLS)
        trade = Trade(symbol=symbol, price=rng.uniform(0.5, 70_000), volume=rng.uniform(0, 5),
                      trade_time_ms=1_700_000_000_000 + i, exchange="US", received_time_ms=1_700_000_000_100 + i,
                      conditions=["1", "12"] if i % 2 else None)
        producer.send(settings.kafka.trades_topic, key=symbol.encode(), value=trade.model_dump_json().encode())
        expected.setdefault(symbol, []).append(trade.price)
    producer.send(settings.kafka.trades_topic, key=b"AAPL", value=b"not a trade")  # skipped, not fatal
    producer.flush()
    producer.close()

    out = tmp_path / "flink.json"
    result = run_flink_smoke(settings, out)

    assert result == {
        symbol: {"trades": len(prices), "low": min(prices), "high": max(prices)} for symbol, prices in expected.items()
    }
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["symbol"] for line in lines) == sorted(expected)
