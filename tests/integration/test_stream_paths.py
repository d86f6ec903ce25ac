"""The bars path keeps committing while a lake batch is held up (here: its catalog locked by
another writer), and the stores agree afterwards."""
from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import private_lake_settings
from tests.integration.test_stream_exactness import (
    kill_group, load_topic, start_job, topic_contents, wait_for)
from tests.stores import assert_stores_hold_exactly, lake_rows
from ticklake.provision import provision

pytestmark = pytest.mark.integration


def batch_span(settings, query: str, batch: int) -> tuple[float, float]:
    """When ``query`` planned ``batch`` (its offsets file) and committed it (its commit file)."""
    root = settings.spark.checkpoint_root / query
    return (root / "offsets" / str(batch)).stat().st_mtime, (root / "commits" / str(batch)).stat().st_mtime


def commits(settings, query: str) -> list[float]:
    folder = settings.spark.checkpoint_root / query / "commits"
    return sorted(p.stat().st_mtime for p in folder.glob("[0-9]*")) if folder.is_dir() else []


def planned(settings, query: str) -> int:
    folder = settings.spark.checkpoint_root / query / "offsets"
    return len(list(folder.glob("[0-9]*"))) if folder.is_dir() else 0


def test_bar_batches_commit_while_a_lake_batch_is_held_up(pipeline_settings, tmp_path: Path):
    settings = private_lake_settings(pipeline_settings, tmp_path / "lake")
    provision(settings)
    log = tmp_path / "job.log"
    job = start_job(settings, log, "--bars-trigger-seconds", "0.5", "--lake-trigger-seconds", "4")
    try:
        load_topic(settings, tmp_path, 500, seed=5, poison=False)
        wait_for(lambda: len(commits(settings, "lake")) >= 1 and len(commits(settings, "bars")) >= 1, 300, log)
        held = planned(settings, "lake")  # the lake's next batch
        catalog = sqlite3.connect(settings.iceberg.catalog_db, isolation_level=None, timeout=30)
        catalog.execute("BEGIN EXCLUSIVE")  # another writer holds the catalog: the lake batch waits
        try:
            load_topic(settings, tmp_path, 300, seed=6, poison=False)
            wait_for(lambda: planned(settings, "lake") > held, 60, log)  # the lake batch has started
            for seed in (7, 8, 9, 10):  # trades for bar batches while it waits
                load_topic(settings, tmp_path, 300, seed=seed, poison=False)
                time.sleep(2)
        finally:
            catalog.execute("ROLLBACK")
            catalog.close()
        wait_for(lambda: len(commits(settings, "lake")) > held, 120, log)
        trades, _ = topic_contents(settings)
        wait_for(lambda: len(lake_rows(settings, settings.iceberg.trades_table)) == len(trades), 120, log)
        time.sleep(3)
    finally:
        kill_group(job, signal.SIGTERM)
    start, end = batch_span(settings, "lake", held)
    during = [at for at in commits(settings, "bars") if start < at < end]
    assert len(during) >= 3, (start, end, commits(settings, "bars"), log.read_text()[-3000:])
    assert_stores_hold_exactly(settings, trades)
