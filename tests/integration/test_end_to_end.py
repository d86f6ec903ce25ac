"""The walking skeleton on the real services: feed -> producer -> Kafka -> Spark -> Cassandra + Iceberg."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone

import pytest

from tests import reference
from tests.stores import assert_stores_hold_exactly, cassandra_bars, time_range
from ticklake.services.process import free_port
from ticklake.cql import cassandra_session
from ticklake.submit import spark_submit
from ticklake.security import kafka_python

pytestmark = pytest.mark.integration

TRADES = 3000


def run_feed_in_thread(settings, port: int, max_trades: int) -> threading.Thread:
    from ticklake.tools.feed import FeedOptions, serve

    options = FeedOptions(rate=2000, max_trades=max_trades)
    thread = threading.Thread(
        target=lambda: asyncio.run(serve(settings, host="127.0.0.1", port=port, options=options)), daemon=True,
    )
    thread.start()
    return thread


def test_trades_from_the_feed_become_exact_bars_in_cassandra_and_iceberg(pipeline_settings):
    from producers.producer import run_producer_sync

    settings = pipeline_settings
    port = free_port()
    run_feed_in_thread(settings, port, TRADES)
    stats = run_producer_sync(settings, url=f"ws://127.0.0.1:{port}", max_trades=TRADES, idle_timeout=20)
    assert stats.trades_produced == TRADES

    spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now")

    trades, others = reference.read_topic(settings, settings.kafka.trades_topic)
    assert len(trades) == TRADES and others == []
    assert_stores_hold_exactly(settings, trades)


def produce_trades(settings, times_ms: list[int], seed: int) -> None:
    import random

    from kafka import KafkaProducer

    from schemas.models import Trade

    rng = random.Random(seed)
    producer = KafkaProducer(**kafka_python(settings, "producer"))
    for time_ms in times_ms:
        symbol = rng.choice(["AAPL", "MSFT"])
        trade = Trade(symbol=symbol, price=round(rng.uniform(100, 101), 2), volume=rng.choice([0.0, 1.0, 3.0]),
                      trade_time_ms=time_ms, exchange="US", received_time_ms=time_ms)
        producer.send(settings.kafka.trades_topic, key=symbol.encode(), value=trade.model_dump_json().encode())
    producer.flush()
    producer.close()


def test_late_trades_reach_their_bars_and_the_rebuild_job_restores_lost_ones(pipeline_settings):
    settings = pipeline_settings
    now_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
    produce_trades(settings, [now_ms - i * 7 for i in range(200)], seed=1)
    spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now")
    late_ms = now_ms - 10 * 60_000  # far behind the 30 s watermark of the first run
    produce_trades(settings, [late_ms + i * 11 for i in range(60)], seed=2)
    spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now")

    trades, _ = reference.read_topic(settings, settings.kafka.trades_topic)
    assert len(trades) == 260
    assert_stores_hold_exactly(settings, trades)  # the late trades are in their bars in both stores

    start, end = time_range(trades)
    late_days = {(t.symbol, datetime.fromtimestamp(t.time_ms / 1000, timezone.utc).date())
                 for t in trades if t.time_ms <= late_ms + 60 * 11}
    session = cassandra_session(settings)
    bars_table = settings.cassandra.qualified(settings.cassandra.bars_table)
    try:  # bars lost (expired, deleted by hand): the rebuild job recomputes them from the lake
        for symbol, day in late_days:
            session.execute(f"DELETE FROM {bars_table} WHERE symbol = %s AND trade_date = %s", (symbol, day))
    finally:
        session.cluster.shutdown()
    assert set(cassandra_bars(settings, ("AAPL", "MSFT"), start, end)) < set(reference.bars(trades))

    spark_submit(settings, "jobs/rebuild_bars.py", "--start", start.isoformat(), "--end", end.isoformat())
    assert_stores_hold_exactly(settings, trades)
