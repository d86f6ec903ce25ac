"""Replay a recording (one raw frame per line, as ``ticklake record`` writes it) into Kafka.

Frames go through the same validation and dead-letter path as live ones, in file order,
keeping the trade times they were recorded with. This is also how history is backfilled.
"""
from __future__ import annotations

import time
from pathlib import Path

from producers.metrics import ProducerMetrics
from producers.sinks import KafkaFrameSink, ProducerStats, frame_rules
from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.progress import Progress


def count_lines(path: Path) -> int:
    with open(path, "rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


def replay(settings: Settings, path: Path, frames_per_second: float | None = None,
           show_progress: bool = True) -> ProducerStats:
    if not path.is_file():
        raise UserError(f"no recording at {path}: record one with 'ticklake record --out {path}'")
    metrics = ProducerMetrics()
    sink = KafkaFrameSink(settings, metrics, frame_rules(settings, replay=True))
    progress = Progress(count_lines(path), "frames") if show_progress else None
    started = time.monotonic()
    with open(path, encoding="utf-8", errors="replace") as file:
        for number, line in enumerate(file, start=1):
            line = line.rstrip("\n")
            if not line:
                continue
            sink.handle(line, int(time.time() * 1000))
            if frames_per_second:
                ahead = number / frames_per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if progress:
                progress.update(number, f"{sink.stats.trades_sent:,} trades")
    stats = sink.close()
    if progress:
        progress.finish(f"{stats.trades_produced:,} trades in Kafka, {stats.dead_letters:,} dead letters")
    return stats
