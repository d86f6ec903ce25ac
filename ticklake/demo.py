"""The end-to-end demo: local feed -> producer -> Kafka -> Spark -> Cassandra + Iceberg -> CQL."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from ticklake import lake, logs, query, services
from schemas.models import BAR_COLUMNS
from ticklake.output import print_rows
from ticklake.submit import spark_submit
from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.provision import provision
from ticklake.security import kafka_python
from ticklake.services.process import free_port, port_in_use


DEMO_MINUTES = 30
DEMO_SECONDS = 10
# A market event (ticklake/tools/feed.py: MarketEvents) this often, for the real-time job's alerts.
DEMO_EVENTS_EVERY_MINUTES = 4


def newest_trade_time(settings: Settings) -> datetime | None:
    """Trade time of the newest record in the trades topic (the last record of each partition)."""
    from kafka import KafkaConsumer, TopicPartition

    topic = settings.kafka.trades_topic
    consumer = KafkaConsumer(**kafka_python(settings), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        wanted = {tp: ends[tp] - 1 for tp in partitions if ends[tp] > 0}
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        newest = None
        deadline = time.monotonic() + 10
        while wanted and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                for record in records:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        newest = max(newest or 0, json.loads(record.value)["trade_time_ms"])
                    wanted.pop(tp, None)
        return datetime.fromtimestamp(newest / 1000, timezone.utc) if newest else None
    finally:
        consumer.close()


def demo_history_minutes(settings: Settings) -> float:
    """Market minutes the demo's feed replays: the last half hour, or the time since the
    previous demo's newest trade, so that the runs' made-up markets do not overlap in time."""
    newest = newest_trade_time(settings)
    if newest is None:
        return DEMO_MINUTES
    return max(0.0, min(DEMO_MINUTES, (datetime.now(timezone.utc) - newest).total_seconds() / 60))


def start_feed(port: int, trades: int, history_minutes: float, timeout: float = 60) -> subprocess.Popen:
    """The local feed as a child process, once it listens: ``trades`` trades over the last
    ``history_minutes`` of market time, sent in about ten seconds, with a market event every
    ``DEMO_EVENTS_EVERY_MINUTES``. Its output goes to the run log."""
    speed = max(1.0, history_minutes * 60 / DEMO_SECONDS)
    run_log = logs.current()
    out = run_log.child_output() if run_log else None
    feed = subprocess.Popen(
        [sys.executable, "-m", "ticklake.cli", "feed", "--host", "127.0.0.1", "--port", str(port),
         "--max-trades", str(trades), "--rate", str(trades / DEMO_SECONDS),
         "--history-minutes", str(history_minutes), "--speed", str(speed),
         "--events-every", str(DEMO_EVENTS_EVERY_MINUTES)],
        stdout=out, stderr=out,
    )
    deadline = time.monotonic() + timeout
    while not port_in_use(port):  # the producer's first connection would fail, and be retried
        if feed.poll() is not None or time.monotonic() > deadline:
            feed.kill()
            raise UserError(f"the local feed did not listen on port {port} within {timeout:.0f} s "
                            f"(exit code {feed.wait()})")
        time.sleep(0.1)
    return feed


def run_demo(settings: Settings, trades: int, progress: Callable[[str], None]) -> int:
    from jobs import flink_live

    services.up(settings, progress=progress)
    progress("provisioning topics, keyspace, tables and lake tables ...")
    provision(settings)
    # The real-time job runs from the start, as it is meant to: it reads the trades as the
    # producer writes them (over a backlog, a partition read late can find the watermark past it).
    progress("starting the real-time PyFlink job (live bars and alerts into Kafka) ...")
    flink_live.start(settings)
    try:
        run_the_pipeline(settings, trades, progress)
    finally:
        progress(f"real-time job: {flink_live.stop(settings)}; 'ticklake flink start' keeps it running")
    return 0


def run_the_pipeline(settings: Settings, trades: int, progress: Callable[[str], None]) -> None:
    from producers.producer import run_producer_sync

    history = demo_history_minutes(settings)
    started = datetime.now(timezone.utc) - timedelta(minutes=history + 1)
    port = free_port()
    progress(f"starting the local Finnhub-compatible feed on ws://127.0.0.1:{port}: {trades} trades "
             f"over the last {history:.1f} minutes of market time")
    feed = start_feed(port, trades, history)
    try:
        stats = run_producer_sync(settings, url=f"ws://127.0.0.1:{port}", max_trades=trades, idle_timeout=30)
    finally:
        feed.terminate()
        feed.wait(timeout=30)
    progress(f"producer: {stats}")

    spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now")

    end = datetime.now(timezone.utc) + timedelta(minutes=1)  # the feed's clock stops at the wall clock
    print(f"\none-minute bars in Cassandra ({settings.cassandra.qualified(settings.cassandra.bars_table)}): "
          "how many of each symbol, and the newest")
    print_rows([newest_bar(symbol, query.bars(settings, symbol, started, end)) for symbol in settings.producer.symbols],
               ["symbol", "bars", *(c for c in BAR_COLUMNS if c != "symbol")])
    print("\nthe lake's Iceberg tables")
    print_rows(lake_tables(settings), ["table", "rows", "snapshot"])
    print(f"\nQuery more with: ticklake query bars {settings.producer.symbols[0]} --start {started:%Y-%m-%dT%H:%M}")
    backtest_the_bars(settings, started, end, progress)
    show_the_real_time_path(settings, started)


def newest_bar(symbol: str, bars: list) -> SimpleNamespace:
    """The count of ``bars`` (newest first) and the fields of the newest (``-`` when there is none)."""
    fields = {c: getattr(bars[0], c) if bars else "-" for c in BAR_COLUMNS}
    return SimpleNamespace(**fields | {"symbol": symbol, "bars": len(bars)})


def lake_tables(settings: Settings) -> list[SimpleNamespace]:
    """Each lake table's name, rows and current snapshot (``-`` for a table still empty)."""
    catalog, tables = lake.catalog(settings), []
    for identifier in lake.table_specs(settings):
        snapshot = catalog.load_table(identifier).current_snapshot()
        tables.append(SimpleNamespace(table=identifier, rows=int(snapshot.summary.get("total-records", 0)) if snapshot
                                      else 0, snapshot=snapshot.snapshot_id if snapshot else "-"))
    return tables


def show_the_real_time_path(settings: Settings, since: datetime) -> None:
    """What the real-time PyFlink job made of the same trades: a few of its alerts and live
    bars, read back committed from Kafka, once it has read the whole trades topic."""
    from collections import Counter

    from jobs import flink_live
    from ticklake import live

    deadline = time.monotonic() + 300
    while live.lag(settings, flink_live.group_id(settings)) > 0 and time.monotonic() < deadline:
        time.sleep(2)
    # Offsets committed up to the end: every trade is in its live bar. The last minutes'
    # bars close (and their alerts fire) once the partitions have idled out and the watermark
    # moves on; the checkpoint after that commits those alerts.
    f = settings.flink
    time.sleep((f.idle_timeout_ms + 3 * f.checkpoint_interval_ms) / 1000)
    alerts = sorted(live.alerts(settings, since=since), key=lambda alert: alert.event_time)
    rules = ", ".join(f"{rule} {n}" for rule, n in sorted(Counter(alert.rule for alert in alerts).items()))
    print(f"\n{len(alerts)} alerts of the real-time job since {since:%H:%M} (topic {f.alerts_topic}"
          f"{': ' + rules if rules else ''}), the newest:")
    print_rows(alerts[-8:], live.ALERT_COLUMNS)
    symbol = settings.producer.symbols[0]
    bars = sorted(((start, bar) for (s, start), bar in live.live_bars(settings).items()
                   if s == symbol and start >= since), reverse=True)
    print(f"\n{symbol}: live 1-minute bars (topic {f.bars_topic}), newest first")
    print_rows([SimpleNamespace(**bar | {"window_start": start}) for start, bar in bars[:5]],
               [c for c in BAR_COLUMNS if c != "symbol"])


def backtest_the_bars(settings: Settings, start: datetime, end: datetime, progress: Callable[[str], None]) -> None:
    """A moving-average crossover sweep over the bars the demo just made; the job prints the
    ranked runs and where the HTML report of the best one is."""
    from ticklake.backtest import request, store

    wanted = request.BacktestRequest(strategy="sma_crossover", symbols=settings.producer.symbols[:2], start=start,
                                     end=end, params={"fast": [3, 5], "slow": [8, 12]}, details=1,
                                     bars_table=settings.iceberg.bars_table)
    checked = store.check(settings, wanted)
    progress(f"backtest: {len(checked.param_sets)} parameter sets x {len(wanted.symbols)} symbols over the lake's bars")
    spark_submit(settings, "jobs/backtest.py", *checked.request.to_argv())
