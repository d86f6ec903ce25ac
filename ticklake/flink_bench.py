"""``ticklake bench flink``: the real-time job's latency under a steady load, exactly once and at
least once, its backlog throughput through all outputs, and its CPU and memory, on private topics
(docs/BENCHMARKS.md)."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from jobs import flink_live
from ticklake.config import Settings
from ticklake.live import lag, live_bars
from ticklake.processes import cpu_seconds, peak_rss_kb
from ticklake.services.process import free_port
from ticklake.security import kafka_python
from ticklake.stream_bench import BarWatcher, load_backlog, percentiles, private_pipeline, topic_trades

Progress = Callable[[str], None]


def _with_guarantee(settings: Settings, guarantee: str) -> Settings:
    return settings.model_copy(update={"flink": settings.flink.model_copy(update={"delivery_guarantee": guarantee})})


def without_rules(settings: Settings) -> Settings:
    """The floor of ``bench flink``: the same job, source, parsing and sinks, with every alert
    rule disabled, so only the live bars and the rejects count are left."""
    f = settings.flink
    off = {name: rule.model_copy(update={"enabled": False}) for name, rule in f.rules().items()}
    return settings.model_copy(update={"flink": f.model_copy(update=off)})


class JvmUsage:
    """CPU seconds and peak resident memory of the job's JVM (PyFlink's gateway with the mini-cluster)."""

    def __init__(self, settings: Settings) -> None:
        self.pid = flink_live.gateway_pid(settings)
        self.cpu_started, self.wall_started = self._cpu(), time.monotonic()

    def _cpu(self) -> float:
        return cpu_seconds(self.pid)

    def figures(self) -> dict[str, float]:
        peak_kb = peak_rss_kb(self.pid)
        cores = (self._cpu() - self.cpu_started) / (time.monotonic() - self.wall_started)
        return {"jvm_cpu_cores": round(cores, 2), "jvm_peak_rss_mb": round(peak_kb / 1024)}


class LiveBarWatcher(BarWatcher):
    """Reads the live bars topic (read_committed) as it is written; notes when each bar first
    showed each trade count (``BarWatcher.latencies`` turns that into per-trade latencies)."""

    def _poll(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        topic = self.settings.flink.bars_topic
        consumer = KafkaConsumer(**kafka_python(self.settings), enable_auto_commit=False,
                                 isolation_level="read_committed")
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        try:
            while not self.done.is_set():
                for records in consumer.poll(timeout_ms=100).values():
                    observed = time.time()
                    for record in records:
                        bar = json.loads(record.value)
                        start = datetime.fromisoformat(bar["window_start"].replace("Z", "+00:00"))
                        counts = self.seen.setdefault((bar["symbol"], start.astimezone(timezone.utc)), [])
                        if not counts or bar["trade_count"] > counts[-1][0]:
                            counts.append((bar["trade_count"], observed))
        finally:
            consumer.close()


def start_load(settings: Settings, rate: float) -> tuple[subprocess.Popen, subprocess.Popen]:
    """The local feed at ``rate`` trades/s and ``ticklake produce`` from it into the trades topic."""
    port = free_port()
    env = {**os.environ, **settings.as_environment(), "TICKLAKE_PRODUCER__URL": f"ws://127.0.0.1:{port}",
           "TICKLAKE_PRODUCER__METRICS_PORT": "0"}
    feed = subprocess.Popen([sys.executable, "-m", "ticklake.cli", "feed", "--port", str(port), "--rate", str(rate)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    producer = subprocess.Popen([sys.executable, "-m", "ticklake.cli", "produce"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return feed, producer


@contextlib.contextmanager
def stream_beside(settings: Settings, progress: Progress):
    """``ticklake stream`` (the Spark job: bars to Cassandra, raw trades, lake) over the same
    trades topic while the block runs, without metrics endpoints; stopped with SIGTERM after."""
    env = {**os.environ, **settings.as_environment(), "TICKLAKE_SPARK__METRICS_PORT": "0",
           "TICKLAKE_SPARK__STORES_METRICS_PORT": "0"}
    progress(f"the Spark job (ticklake stream) beside it, over {settings.kafka.trades_topic} ...")
    stream = subprocess.Popen([sys.executable, "-m", "ticklake.cli", "stream"], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield stream
    finally:
        stream.send_signal(signal.SIGTERM)
        try:
            stream.wait(120)
        except subprocess.TimeoutExpired:
            stream.kill()
            stream.wait()


def bench_latency(settings: Settings, guarantee: str, rate: float, seconds: float, warmup_seconds: float,
                  progress: Progress, with_stream: bool = False) -> dict:
    """Receipt of a trade by the producer (local feed -> ``ticklake produce``) -> a committed live
    bar showing it, for the trades received after ``warmup_seconds`` of load. A measured trade
    that no bar ever showed counts as a failure. ``with_stream``: the Spark job runs beside it."""
    with private_pipeline(settings, f"flink_{guarantee.split('-')[0]}") as private, contextlib.ExitStack() as stack:
        private = _with_guarantee(private, guarantee)
        if with_stream:
            stack.enter_context(stream_beside(private, progress))
        flink_live.start(private)
        feed, producer = start_load(private, rate)
        watcher = LiveBarWatcher(private)
        try:
            progress(f"{guarantee}: {rate:.0f} trades/s, checkpoints every {private.flink.checkpoint_interval_ms} ms: "
                     f"{warmup_seconds:.0f} s of warm-up, then {seconds:.0f} s measured ...")
            time.sleep(warmup_seconds)
            usage, measured_from = JvmUsage(private), time.time()
            time.sleep(seconds)
            jvm = usage.figures()
        finally:
            for process in (producer, feed):
                process.send_signal(signal.SIGTERM)
                process.wait(60)
            time.sleep(5)  # the last trades reach their bars
            watcher.stop()
            flink_live.stop(private)
        latencies, failures = watcher.latencies(list(topic_trades(private)), since_ms=measured_from * 1000)
        prefix = guarantee.replace("-", "_")
        return {f"{prefix}_trades": len(latencies) + failures, f"{prefix}_failures": failures,
                **percentiles(prefix, latencies), **{f"{prefix}_{k}": v for k, v in jvm.items()}}


def bench_backlog(settings: Settings, trades: int, progress: Progress, with_stream: bool = False) -> dict:
    """``trades`` trades already in Kafka, through every output exactly once: seconds from the
    job running to its checkpoint that covers the last offset (outputs commit with it); a trade
    its committed live bar does not count is a failure.
    ``with_stream``: the Spark job works through the same backlog beside it."""
    with private_pipeline(settings, "flink_backlog") as private, contextlib.ExitStack() as stack:
        load_backlog(private, trades, minutes=120, progress=progress)
        if with_stream:
            stack.enter_context(stream_beside(private, progress))
        progress(f"the real-time job over a backlog of {trades:,} trades ...")
        flink_live.start(private)
        try:
            usage, started = JvmUsage(private), time.monotonic()
            while lag(private, flink_live.group_id(private)) > 0:
                if time.monotonic() - started > 1800:
                    raise RuntimeError("the real-time job did not get through the backlog in 30 minutes")
                time.sleep(0.5)
            seconds = time.monotonic() - started
            jvm = usage.figures()
        finally:
            flink_live.stop(private)
        # Every trade counted in its final live bar, else a failure (loaded trades are all valid).
        counted = sum(bar["trade_count"] for bar in live_bars(private).values())
        return {"backlog_trades": trades, "backlog_failures": trades - counted, "backlog_seconds": round(seconds, 1),
                "backlog_trades_per_second": round(trades / seconds),
                **{f"backlog_{k}": v for k, v in jvm.items()}}
