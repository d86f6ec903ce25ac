"""Benchmarks that print their figures (``ticklake bench ...``); see docs/BENCHMARKS.md."""
from __future__ import annotations

import asyncio
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable

from ticklake.config import Settings
from ticklake.demo import free_port


def machine() -> str:
    import os

    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def bench_producer(settings: Settings, trades: int, trades_per_frame: int,
                   progress: Callable[[str], None]) -> dict[str, float]:
    """Feed (another process, as fast as it can) -> producer (this process) -> acknowledged Kafka writes."""
    from producers.producer import Producer

    port = free_port()
    feed = subprocess.Popen(
        [sys.executable, "-m", "ticklake.cli", "feed", "--host", "127.0.0.1", "--port", str(port), "--rate", "1e12",
         "--max-trades", str(trades), "--trades-per-frame", str(trades_per_frame)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        producer = Producer(settings, f"ws://127.0.0.1:{port}", max_trades=trades, idle_timeout=30)
        progress(f"producing {trades:,} trades from the local feed into {settings.kafka.trades_topic} ...")
        started = time.perf_counter()
        stats = asyncio.run(producer.run())
        seconds = time.perf_counter() - started
    finally:
        feed.terminate()
        feed.wait(timeout=30)
    return {
        "trades": stats.trades_produced,
        "delivery_errors": stats.delivery_errors,
        "seconds": round(seconds, 2),
        "trades_per_second": round(stats.trades_produced / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "compression": settings.kafka.compression,
    }
