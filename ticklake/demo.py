"""The end-to-end demo: local feed -> producer -> Kafka -> Spark -> Cassandra + Iceberg -> CQL."""
from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from ticklake import lake, query, services
from ticklake.output import BAR_COLUMNS, print_rows
from ticklake.submit import spark_submit
from ticklake.config import Settings
from ticklake.provision import provision


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_feed(settings: Settings, port: int, trades: int) -> subprocess.Popen:
    """The local Finnhub-compatible feed as a child process, sending ``trades`` trades."""
    return subprocess.Popen(
        [sys.executable, "-m", "ticklake.cli", "feed", "--host", "127.0.0.1", "--port", str(port),
         "--max-trades", str(trades), "--rate", str(max(settings.feed.trades_per_second, trades / 10))],
    )


def run_demo(settings: Settings, trades: int, progress: Callable[[str], None]) -> int:
    from producers.producer import run_producer_sync

    started = datetime.now(timezone.utc) - timedelta(minutes=1)
    services.up(settings, progress=progress)
    progress("provisioning topics, keyspace, tables and lake tables ...")
    provision(settings)

    port = free_port()
    progress(f"starting the local Finnhub-compatible feed on ws://127.0.0.1:{port} ({trades} trades)")
    feed = start_feed(settings, port, trades)
    try:
        stats = run_producer_sync(settings, url=f"ws://127.0.0.1:{port}", max_trades=trades, idle_timeout=30)
    finally:
        feed.terminate()
        feed.wait(timeout=30)
    progress(f"producer: {stats}")

    spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now")

    end = datetime.now(timezone.utc) + timedelta(minutes=2)
    for symbol in settings.producer.symbols:
        rows = query.bars(settings, symbol, started, end)
        print(f"\n{symbol}: {len(rows)} one-minute bars in Cassandra "
              f"({settings.cassandra.keyspace}.{settings.cassandra.bars_table}), newest first")
        print_rows(rows[:5], BAR_COLUMNS)
    catalog = lake.catalog(settings)
    for identifier in lake.table_specs(settings):
        table = catalog.load_table(identifier)
        snapshot = table.current_snapshot()
        rows = snapshot.summary.get("total-records") if snapshot else 0
        print(f"\nIceberg {identifier}: {rows} rows, snapshot {snapshot.snapshot_id if snapshot else None}")
    print(f"\nQuery more with: ticklake query bars --symbol {settings.producer.symbols[0]} --start {started:%Y-%m-%dT%H:%M}")
    return 0
