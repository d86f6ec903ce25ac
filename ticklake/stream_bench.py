"""``ticklake bench stream``: the streaming job's backlog throughput, its latency under a steady
load, and the driver's peak memory, on private topics and tables (docs/BENCHMARKS.md)."""
from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from producers.frames import trade_json
from ticklake import lake
from ticklake.config import Settings
from ticklake.processes import command_line, cpu_seconds, peak_rss_kb, processes
from ticklake.cql import cassandra_session
from ticklake.sandbox import drop_named, isolated
from ticklake.times import MINUTE, floor_time
from ticklake.topics import read_topic
from ticklake.provision import provision
from ticklake.submit import spark_submit_background

Progress = Callable[[str], None]
QUERIES = ("bars", "trades", "lake")
SYMBOLS = [f"SYM{i:02d}" for i in range(10)]


@contextmanager
def private_pipeline(settings: Settings, name: str):
    """Settings with their own topics, tables and checkpoints, provisioned, dropped afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"ticklake-bench-{name}-"))
    private = isolated(settings, f"bench_{name}_{uuid.uuid4().hex[:6]}", root / "checkpoints")
    provision(private)
    try:
        yield private
    finally:
        drop_named(private)


def load_backlog(settings: Settings, trades: int, minutes: int, progress: Progress) -> None:
    """``trades`` synthetic trades of 10 symbols over the last ``minutes`` minutes, straight into Kafka."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 50,
                         "compression.type": settings.kafka.compression, "queue.buffering.max.messages": 1_000_000})
    rng = random.Random(11)
    now = int(time.time() * 1000)
    first, step = now - minutes * 60_000, minutes * 60_000 / trades
    prices = {s: rng.uniform(20, 500) for s in SYMBOLS}
    topic = settings.kafka.trades_topic
    for i in range(trades):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        prices[symbol] *= 1 + rng.gauss(0, 0.0005)
        t = int(first + i * step)
        value = trade_json({"symbol": symbol, "price": round(prices[symbol], 4),
                            "volume": float(rng.choice((0, 1, 2, 5, 100))), "trade_time_ms": t, "conditions": None,
                            "exchange": "US", "received_time_ms": t})
        while True:
            try:
                producer.produce(topic, value, symbol.encode())
                break
            except BufferError:
                producer.poll(0.1)
        if i % 500_000 == 0:
            progress(f"loaded {i:,} of {trades:,} trades into {topic} ...")
    producer.flush(120)


class PeakMemory:
    """Polls the peak resident memory (VmHWM) of the driver's JVM and Python processes."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid, self.jvm_kb, self.python_kb = root_pid, 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.wait(1.0):
            for pid in descendants(self.root_pid):
                command = command_line(pid)
                if command is None:
                    continue
                if command[0].startswith(b"/") and b"java" in command[0]:
                    self.jvm_kb = max(self.jvm_kb, peak_rss_kb(pid))
                elif any(b"ohlcv_stream" in part or b"pyspark" in part for part in command):
                    self.python_kb = max(self.python_kb, peak_rss_kb(pid))

    def stop(self) -> dict[str, float]:
        self.done.set()
        self.thread.join()
        return {"driver_jvm_peak_rss_mb": round(self.jvm_kb / 1024), "python_peak_rss_mb": round(self.python_kb / 1024)}


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for child, fields in processes():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def start_job(settings: Settings, log: Path, *args: str, niceness: int = 0, floor: bool = False) -> subprocess.Popen:
    """The streaming job, or with ``floor`` the floor's job (``ticklake/stream_floor.py``), which
    takes the same options."""
    quiet = settings.model_copy(update={"spark": settings.spark.model_copy(update={"metrics_port": 0})})
    script = "ticklake/stream_floor.py" if floor else "jobs/ohlcv_stream.py"
    return spark_submit_background(quiet, script, *args, log=log, niceness=niceness)


class CpuUse:
    """CPU time of groups of processes (each a pid and its descendants) and of the whole machine
    between ``start`` and ``figures``, as cores used on average."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.started = time.monotonic()
        self.before = self._seconds()

    def _seconds(self) -> dict[str, float]:
        used = {name: sum(cpu_seconds(pid) for root in roots for pid in descendants(root))
                for name, roots in self.groups.items()}
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        used["machine"] = sum(int(f) for f in fields[:3] + fields[5:8]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
        return used

    def figures(self) -> dict[str, float]:
        after, seconds = self._seconds(), time.monotonic() - self.started
        return {name: round((after[name] - self.before[name]) / seconds, 2) for name in after}


def service_pid(settings: Settings, name: str) -> list[int]:
    from ticklake.services.process import read_pid

    pid = read_pid(settings.services_dir / name / f"{name}.pid")
    return [pid] if pid else []


def batch_times(settings: Settings, query: str) -> list[tuple[float, float]]:
    """(planned, committed) epoch seconds of each committed micro-batch of ``query``: the times
    of its offsets file and its commit file in the checkpoint."""
    root = settings.spark.checkpoint_root / query
    planned = {p.name: p.stat().st_mtime for p in (root / "offsets").glob("[0-9]*")}
    return [(planned[p.name], p.stat().st_mtime) for p in (root / "commits").glob("[0-9]*") if p.name in planned]


def processing_window(settings: Settings) -> float:
    """Seconds from the first micro-batch planned to the last committed, over all queries."""
    times = [t for query in QUERIES for t in batch_times(settings, query)]
    return max(committed for _, committed in times) - min(planned for planned, _ in times)


def bench_backlog(settings: Settings, trades: int, progress: Progress, floor: bool = False) -> dict:
    """Trades per second of the job (with ``floor``, of the floor's job) over a backlog of ``trades``
    with ``--available-now``, its driver's peak memory and the phases of its batches."""
    with private_pipeline(settings, "backlog") as private:
        load_backlog(private, trades, minutes=120, progress=progress)
        progress(f"running the {'floor' if floor else 'streaming'} job over {trades:,} trades (--available-now) ...")
        log = private.spark.checkpoint_root.parent / "job.log"
        journal = private.spark.checkpoint_root.parent / "phases.jsonl"
        private = private.model_copy(update={"spark": private.spark.model_copy(update={"phase_journal": journal})})
        since, started = time.time(), time.perf_counter()
        job = start_job(private, log, "--available-now", floor=floor)
        memory = PeakMemory(job.pid)
        code = job.wait()
        wall = time.perf_counter() - started
        peaks = memory.stop()
        if code != 0:
            raise RuntimeError(f"the streaming job failed (exit {code}); log {log}")
        window = processing_window(private)
        stored = lake.catalog(private).load_table(
            lake.identifier(private, private.iceberg.trades_table)).scan().count()
        if stored != trades:
            raise RuntimeError(f"Iceberg holds {stored:,} trades, not {trades:,}; log {log}")
        return {"backlog_job": "floor" if floor else "ohlcv_stream", "backlog_trades": trades,
                "backlog_wall_seconds": round(wall, 1),
                "backlog_processing_seconds": round(window, 1),
                "backlog_trades_per_second": round(trades / window), **peaks,
                "backlog_phases": phase_figures(journal, since, time.time())}


def bench_latency(settings: Settings, rate: float, seconds: float, bars_trigger_seconds: float,
                  warmup_seconds: float, progress: Progress, floor: bool = False, split: bool = False) -> dict:
    """Receipt of a trade by the producer -> its bar showing it in Cassandra, and -> the raw trade
    readable in Cassandra, at ``rate`` trades/s, for the trades received after ``warmup_seconds``
    of that load: a fresh JVM compiles its hot code in the first minute and the job starts behind,
    so the warm-up covers its catching up (a streaming job runs for days). A trade whose bar never
    showed it is a failure. Then the durations of bar batches without trades, and the median and
    p95 of every phase of every query while measured. With ``floor``, the same for
    ``ticklake/stream_floor.py``, the smallest job that does the same visible work, in one
    application. Otherwise with ``split``, the bars run in an application of their own and the
    stores in a second one at ``spark.stores_niceness``, as ``ticklake stream`` runs them. The CPU each process used while
    measured is given in cores."""
    with private_pipeline(settings, "latency") as private:
        root = private.spark.checkpoint_root.parent
        journal = root / "phases.jsonl"
        private = private.model_copy(update={"spark": private.spark.model_copy(update={"phase_journal": journal})})
        options = ("--bars-trigger-seconds", str(bars_trigger_seconds), "--starting-offsets", "latest")
        if floor:
            jobs = {"job": start_job(private, root / "job.log", *options, floor=True)}
        elif split:
            jobs = {"bars_app": start_job(private, root / "job.log", *options, "--queries", "bars"),
                    "stores_app": start_job(private, root / "job.log", *options, "--queries", "trades,lake",
                                            niceness=private.spark.stores_niceness)}
        else:
            jobs = {"job": start_job(private, root / "job.log", *options)}
        while not all((private.spark.checkpoint_root / query / "offsets").is_dir() for query in QUERIES):
            if any(job.poll() is not None for job in jobs.values()):
                raise RuntimeError(f"the streaming job exited; log {root / 'job.log'}")
            time.sleep(1)
        time.sleep(5)
        from ticklake.flink_bench import start_load

        feed, producer = start_load(private, rate)
        watcher = BarWatcher(private)
        progress(f"{rate:.0f} trades/s, bars trigger {bars_trigger_seconds} s{', two applications' if split else ''}: "
                 f"{warmup_seconds:.0f} s of warm-up, then {seconds:.0f} s measured ...")
        time.sleep(warmup_seconds)
        measured_from = time.time()
        cpu = CpuUse({**{name: [job.pid] for name, job in jobs.items()},
                      "kafka": service_pid(private, "kafka"), "cassandra": service_pid(private, "cassandra"),
                      "producer": [producer.pid], "feed": [feed.pid]})
        time.sleep(seconds)
        cores = cpu.figures()
        for process in (producer, feed):
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        measured_to = time.time()
        time.sleep(private.spark.lake_trigger_seconds / 4 + 10)  # the last trades reach their bars
        watcher.stop()
        empty = empty_batches(private, journal, progress)
        for job in jobs.values():
            os.killpg(job.pid, signal.SIGTERM)
        for job in jobs.values():
            job.wait(120)
        records = list(topic_trades(private))
        bars, failures = watcher.latencies(records, since_ms=measured_from * 1000)
        if not bars:
            raise RuntimeError(f"no bar updates seen; log {root / 'job.log'}")
        job = "floor" if floor else "ohlcv_stream" + (" (two applications)" if split else "")
        return {"latency_job": job, "latency_rate": rate, "latency_bars_trigger_seconds": bars_trigger_seconds,
                "latency_trades": len(bars) + failures, "latency_failures": failures,
                **percentiles("latency", bars), "cpu_cores": cores,
                **percentiles("raw_latency", raw_latencies(private, records, since_ms=measured_from * 1000)),
                **empty, "phases": phase_figures(journal, measured_from, measured_to)}


def percentiles(name: str, values: list[float]) -> dict:
    if not values:
        return {f"{name}_samples": 0}
    values = sorted(values)

    def pct(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 3)

    return {f"{name}_p50_seconds": pct(0.50), f"{name}_p95_seconds": pct(0.95), f"{name}_p99_seconds": pct(0.99)}


def journal_entries(journal: Path, since: float, until: float) -> list[dict]:
    with open(journal) as lines:
        return [entry for entry in map(json.loads, lines) if since <= entry["at"] <= until]


def phase_figures(journal: Path, since: float, until: float) -> dict[str, dict[str, float]]:
    """Per ``query/phase``: count, median, p95 and max seconds of the journal's entries in the window."""
    groups: dict[str, list[float]] = {}
    for entry in journal_entries(journal, since, until):
        groups.setdefault(f"{entry['query']}/{entry['phase']}", []).append(entry["seconds"])
    figures = {}
    for name, values in sorted(groups.items()):
        values.sort()
        figures[name] = {"n": len(values), "median": round(statistics.median(values), 3),
                         "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 3),
                         "max": round(values[-1], 3)}
    return figures


def empty_batches(settings: Settings, journal: Path, progress: Progress, records: int = 10) -> dict:
    """Bar batches that hold no trade: ``records`` records that are not trades, one every 3 s,
    and the bars query's batch durations (``triggerExecution``) they caused."""
    from confluent_kafka import Producer

    progress(f"{records} micro-batches without trades ...")
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    since = time.time()
    for _ in range(records):
        producer.produce(settings.kafka.trades_topic, b"not a trade", b"EMPTY")
        producer.flush(10)
        time.sleep(3)
    durations = sorted(e["seconds"] for e in journal_entries(journal, since, time.time())
                       if e["query"] == "bars" and e["phase"] == "triggerExecution")
    if not durations:
        return {"empty_batches": 0}
    return {"empty_batches": len(durations), "empty_batch_seconds_median": round(statistics.median(durations), 3),
            "empty_batch_seconds_max": round(durations[-1], 3)}


def committed_ends(settings: Settings, query: str) -> list[tuple[float, dict[int, int]]]:
    """(commit time, end offset per partition) of each committed micro-batch of ``query``, in order."""
    root = settings.spark.checkpoint_root / query
    out = []
    for commit in (root / "commits").glob("[0-9]*"):
        lines = (root / "offsets" / commit.name).read_text().splitlines()
        ends = json.loads(lines[2])[settings.kafka.trades_topic]
        out.append((commit.stat().st_mtime, {int(p): offset for p, offset in ends.items()}))
    return sorted(out, key=lambda entry: entry[0])


def raw_latencies(settings: Settings, records: list[tuple[int, int, dict]], since_ms: float) -> list[float]:
    """Per trade of ``records`` (``topic_trades``) received from ``since_ms`` on: the commit of the
    ``trades`` query's batch that wrote it to Cassandra, minus its receipt by the producer."""
    ends = committed_ends(settings, "trades")
    out = []
    for partition, offset, trade in records:
        if trade["received_time_ms"] >= since_ms:
            committed = next((at for at, end in ends if end.get(partition, 0) > offset), None)
            if committed is not None:
                out.append(committed - trade["received_time_ms"] / 1000)
    return out


def topic_trades(settings: Settings):
    """(partition, offset, trade) of every trade record of the trades topic."""
    for record in read_topic(settings, settings.kafka.trades_topic):
        try:
            yield record.partition, record.offset, orjson.loads(record.value)
        except orjson.JSONDecodeError:
            continue


class BarWatcher:
    """Polls the current minutes' bars in Cassandra; notes when each bar first showed each trade count."""

    POLL_SECONDS = 0.25

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.seen: dict[tuple[str, datetime], list[tuple[int, float]]] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        cas = self.settings.cassandra
        session = cassandra_session(self.settings)
        statement = session.prepare(
            f"SELECT window_start, trade_count FROM {cas.qualified(cas.bars_table)} "
            "WHERE symbol = ? AND trade_date = ? AND window_start >= ?")
        try:
            while not self.done.wait(self.POLL_SECONDS):
                since = datetime.now(timezone.utc) - timedelta(minutes=2)
                for symbol in self.settings.producer.symbols:
                    for day in {since.date(), datetime.now(timezone.utc).date()}:
                        for row in session.execute(statement, (symbol, day, since)):
                            observed = time.time()
                            counts = self.seen.setdefault((symbol, row.window_start.replace(tzinfo=timezone.utc)), [])
                            if not counts or row.trade_count > counts[-1][0]:
                                counts.append((row.trade_count, observed))
        finally:
            session.cluster.shutdown()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def latencies(self, records: list[tuple[int, int, dict]], since_ms: float) -> tuple[list[float], int]:
        """Per trade of ``records`` (``topic_trades``) received from ``since_ms`` on: first time its bar's count reached the trade's
        rank in the bar (arrival order), minus its receipt by the producer; and how many trades
        no bar ever showed (failures)."""
        ranks: dict[tuple[str, datetime], int] = {}
        out, failures = [], 0
        for _, _, trade in records:
            minute = floor_time(datetime.fromtimestamp(trade["trade_time_ms"] / 1000, timezone.utc), MINUTE)
            key = (trade["symbol"], minute)
            ranks[key] = rank = ranks.get(key, 0) + 1
            if trade["received_time_ms"] < since_ms:
                continue
            shown = next((at for count, at in self.seen.get(key, []) if count >= rank), None)
            if shown is None:
                failures += 1
            else:
                out.append(shown - trade["received_time_ms"] / 1000)
        return out, failures
