"""Benchmarks that print their figures (``ticklake bench ...``); see docs/BENCHMARKS.md."""
from __future__ import annotations

import asyncio
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ticklake.config import Settings
from ticklake.services.process import free_port


def machine() -> str:
    import os

    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def write_recording(path: Path, symbols: list[str], trades: int, trades_per_frame: int) -> None:
    """``trades`` synthetic trades as frames of the local feed, one per line."""
    from ticklake.tools.feed import FeedOptions, FeedServer

    feed = FeedServer(FeedOptions(max_trades_per_frame=trades_per_frame))
    written = 0
    with open(path, "w") as out:
        while written < trades:
            frame = feed.trade_frame(symbols)
            frame["data"] = frame["data"][: trades - written]
            written += len(frame["data"])
            out.write(json.dumps(frame, separators=(",", ":")) + "\n")


def bench_producer(settings: Settings, trades: int, trades_per_frame: int,
                   progress: Callable[[str], None]) -> dict[str, float]:
    """Feed (another process, replaying pre-built frames as fast as it can, so it costs little
    CPU) -> producer (this process) -> acknowledged Kafka writes."""
    from producers.producer import Producer
    from ticklake.topics import ensure_topics

    ensure_topics(settings)  # set-up, not throughput: the producer's own check is then quick
    port = free_port()
    recording = Path(tempfile.mkdtemp(prefix="ticklake-bench-")) / "frames.ndjson"
    progress(f"building {trades:,} trades in frames of up to {trades_per_frame} ...")
    write_recording(recording, settings.producer.symbols, trades, trades_per_frame)
    feed = subprocess.Popen(
        [sys.executable, "-m", "ticklake.cli", "feed", "--host", "127.0.0.1", "--port", str(port), "--rate", "1e12",
         "--replay", str(recording)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        producer = Producer(settings, f"ws://127.0.0.1:{port}", max_trades=trades, idle_timeout=30)
        progress(f"producing {trades:,} trades from the local feed into {settings.kafka.trades_topic} ...")
        started, cpu_started, loop_started = time.perf_counter(), time.process_time(), time.thread_time()
        stats = asyncio.run(producer.run())
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        loop_seconds = time.thread_time() - loop_started
    finally:
        feed.terminate()
        feed.wait(timeout=30)
        shutil.rmtree(recording.parent, ignore_errors=True)
    return {
        "trades": stats.trades_produced,
        "delivery_errors": stats.delivery_errors,
        "seconds": round(seconds, 2),
        "trades_per_second": round(stats.trades_produced / seconds),
        # CPU of the producer process (all its threads) per trade: steadier than the rate on a busy machine.
        "cpu_us_per_trade": round(cpu_seconds / max(stats.trades_produced, 1) * 1e6, 2),
        # ... of which the event loop's thread (socket, validation, produce calls): the part that
        # caps one process, since librdkafka's threads run on the other core.
        "event_loop_cpu_us_per_trade": round(loop_seconds / max(stats.trades_produced, 1) * 1e6, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "compression": settings.kafka.compression,
        "client": settings.kafka.client,
        "trades_per_frame": trades_per_frame,
    }
