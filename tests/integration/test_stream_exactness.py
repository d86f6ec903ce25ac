"""The streaming job on awkward input, through kill -9 and a Cassandra outage: every bar exact,
every trade stored once, every bad record quarantined, compared with tests.reference."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from producers.replay import replay
from tests import reference
from tests.stores import assert_stores_hold_exactly, cassandra_trade_ids, lake_rows, time_range
from ticklake.submit import spark_submit, spark_submit_background
from ticklake.security import kafka_python

pytestmark = pytest.mark.integration

SYMBOLS = ["AAPL", "MSFT", "BINANCE:BTCUSDT"]

# Records a foreign producer might put on the trades topic, each of which the job must quarantine.
POISON: list[bytes | None] = [
    b"not json",
    None,  # a tombstone
    b"\xff\xfe\x00",  # not UTF-8
    b"[]",
    b'{"symbol":"AAPL"}',
    b'{"symbol":"AAPL","price":-1,"volume":1,"trade_time_ms":1700000000000,"received_time_ms":1700000000000}',
    b'{"symbol":"","price":1,"volume":1,"trade_time_ms":1700000000000,"received_time_ms":1700000000000}',
    b'{"symbol":"AAPL","price":"12.5","volume":1,"trade_time_ms":1700000000000,"received_time_ms":1700000000000}',
    b'{"symbol":"AAPL","price":1e400,"volume":1,"trade_time_ms":1700000000000,"received_time_ms":1700000000000}',
    b'{"symbol":"AAPL","price":NaN,"volume":1,"trade_time_ms":1700000000000,"received_time_ms":1700000000000}',
    b'{"symbol":"AAPL","price":1,"volume":-3,"trade_time_ms":1700000000000,"received_time_ms":1700000000000}',
    b'{"symbol":"AAPL","price":1,"volume":1,"trade_time_ms":100000000000000000,"received_time_ms":1}',
]


def awkward_recording(path: Path, trades: int, start_ms: int, seed: int) -> int:
    """A recording (NDJSON frames) of about ``trades`` trades with what breaks naive bar code:
    many trades in one millisecond, trades up to 20 s out of order (inside the 30 s watermark),
    identical twins, ``v = 0`` updates, and invalid elements for the producer's dead letters.
    Market time runs about 5 ms a trade. Returns the number of invalid elements."""
    rng = random.Random(seed)
    clock, made, invalid = start_ms, 0, 0
    with open(path, "w") as out:
        while made < trades:
            data = []
            for _ in range(rng.randint(1, 20)):
                clock += rng.choice([0, 0, 0, 1, 5, 17])
                late = rng.randint(1, 20_000) if rng.random() < 0.1 else 0
                trade = {"s": rng.choice(SYMBOLS), "p": round(rng.uniform(99, 101), 2), "t": clock - late,
                         "v": 0 if rng.random() < 0.1 else rng.choice([1, 2, 0.5])}
                data.append(trade)
                if rng.random() < 0.05:
                    data.append(dict(trade))  # an identical trade: two trades, both count
            made += len(data)
            if rng.random() < 0.1:
                data.append({"s": "AAPL", "p": -1, "t": clock, "v": 1})
                invalid += 1
            out.write(json.dumps({"type": "trade", "data": data}) + "\n")
    return invalid


def load_topic(settings, tmp_path: Path, trades: int, seed: int, poison: bool = True) -> None:
    """Replay an awkward recording through the producer's path, and poison the topic directly."""
    recording = tmp_path / f"awkward-{seed}.ndjson"
    invalid = awkward_recording(recording, trades, int(time.time() * 1000) - 3_600_000, seed)
    stats = replay(settings, recording, show_progress=False)
    assert stats.delivery_errors == 0 and stats.dead_letters == invalid
    if poison:
        from kafka import KafkaProducer

        producer = KafkaProducer(**kafka_python(settings, "producer"))
        for value in POISON:
            producer.send(settings.kafka.trades_topic, key=b"AAPL", value=value)
        producer.flush()
        producer.close()


def topic_contents(settings):
    trades, others = reference.read_topic(settings, settings.kafka.trades_topic)
    assert len({(t.symbol, t.time_ms) for t in trades}) < len(trades)  # equal times really occur
    return trades, others


def assert_quarantined_exactly(settings, others) -> None:
    rows = lake_rows(settings, settings.iceberg.quarantine_table)
    assert sorted((r["kafka_partition"], r["kafka_offset"]) for r in rows) == sorted(others)
    assert all(r["reason"] for r in rows)


def test_awkward_trades_and_poison_records_give_exact_bars_and_a_full_quarantine(
        pipeline_settings, tmp_path, monkeypatch, capsys):
    settings = pipeline_settings
    load_topic(settings, tmp_path, 4000, seed=1)
    spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now")
    trades, others = topic_contents(settings)
    assert len(others) == len(POISON)
    assert_stores_hold_exactly(settings, trades)
    assert_quarantined_exactly(settings, others)
    assert_cli_query_answers(settings, trades, monkeypatch, capsys)


def assert_cli_query_answers(settings, trades, monkeypatch, capsys) -> None:
    """``ticklake query`` as a user runs it: JSON and CSV rows of the range, a message for a stranger."""
    from tests.reference import bars
    from ticklake.cli import main

    for name, value in settings.as_environment().items():
        monkeypatch.setenv(name, value)
    start, end = (t.isoformat() for t in time_range(trades))
    capsys.readouterr()
    assert main(["query", "bars", "MSFT", "--start", start, "--end", end, "--format", "json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = {key: bar for key, bar in bars(trades).items() if key[0] == "MSFT"}
    assert len(rows) == len(expected) and sum(r["trade_count"] for r in rows) == sum(
        b["trade_count"] for b in expected.values())
    assert main(["query", "trades", "AAPL", "--start", start, "--end", end, "--format", "csv", "--limit", "50"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 51
    assert main(["query", "bars", "NOPE", "--start", start, "--end", end]) == 1
    assert "not one of the configured symbols" in capsys.readouterr().err


def start_job(settings, log: Path, *args: str) -> subprocess.Popen:
    return spark_submit_background(settings, "jobs/ohlcv_stream.py", *args, log=log)


def batches_started(settings, query: str) -> int:
    offsets = settings.spark.checkpoint_root / query / "offsets"
    return len([p for p in offsets.glob("*") if p.name.isdigit()]) if offsets.is_dir() else 0


def kill_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    process.wait(timeout=120)


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_doubles_nothing(pipeline_settings, tmp_path):
    settings = pipeline_settings
    load_topic(settings, tmp_path, 20_000, seed=2)
    rng = random.Random()
    log = tmp_path / "job.log"
    args = ("--available-now", "--max-offsets-per-trigger", "1500")
    queries = ["bars", "trades", "lake"]
    kills = 0
    for _ in range(3):
        query = rng.choice(queries)
        seen = batches_started(settings, query)
        job = start_job(settings, log, *args)
        deadline = time.monotonic() + 300
        while batches_started(settings, query) <= seen and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if job.poll() is not None:
            break  # it finished before we struck: the rest is checked all the same
        time.sleep(rng.uniform(0, 3))  # somewhere inside a micro-batch or its commit
        kill_group(job, signal.SIGKILL)
        kills += 1
    assert kills >= 2, log.read_text()[-3000:]
    spark_submit(settings, "jobs/ohlcv_stream.py", *args)  # the restart that finishes the backlog

    trades, others = topic_contents(settings)
    assert len(trades) > 20_000 and len(others) == len(POISON)
    assert_stores_hold_exactly(settings, trades)
    assert_quarantined_exactly(settings, others)


@pytest.mark.slow
def test_a_cassandra_outage_is_waited_out_and_nothing_is_lost(pipeline_settings, tmp_path):
    from ticklake import services as svc
    from ticklake.services.cassandra import CassandraService

    settings = pipeline_settings.model_copy(update={"spark": pipeline_settings.spark.model_copy(update={
        "restart_backoff_seconds": 2.0, "max_restart_backoff_seconds": 8.0})})
    load_topic(settings, tmp_path, 3000, seed=3, poison=False)
    log = tmp_path / "job.log"
    job = start_job(settings, log, "--trigger-seconds", "2", "--lake-trigger-seconds", "5")
    try:
        first, _ = topic_contents(settings)
        wait_for(lambda: stored_in_cassandra(settings, first) == len(first), 300, log)

        CassandraService(settings).stop(lambda message: None)
        load_topic(settings, tmp_path, 3000, seed=4, poison=False)
        time.sleep(30)  # queries fail and restart while Cassandra is away
        assert job.poll() is None, "the job gave up instead of waiting:\n" + log.read_text()[-3000:]
        svc.up(settings)

        trades, _ = topic_contents(settings)
        wait_until_stored(settings, trades, log)
    finally:
        kill_group(job, signal.SIGTERM)
        svc.up(settings)
    assert "restarting all queries" in log.read_text()
    assert_stores_hold_exactly(settings, trades)


def stored_in_cassandra(settings, trades) -> int:
    from cassandra.cluster import NoHostAvailable

    start, end = time_range(trades)
    try:
        return len(cassandra_trade_ids(settings, {t.symbol for t in trades}, start, end))
    except NoHostAvailable:
        return -1


def wait_until_stored(settings, trades, log: Path) -> None:
    """Until a running job has every trade in Cassandra and the lake, and the last bars in the lake."""
    wait_for(lambda: stored_in_cassandra(settings, trades) == len(trades), 300, log)
    wait_for(lambda: len(lake_rows(settings, settings.iceberg.trades_table)) == len(trades), 180, log)
    time.sleep(12)  # the last bar changes reach the lake


def wait_for(condition, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out; job log:\n" + log.read_text()[-3000:]
        time.sleep(2)
