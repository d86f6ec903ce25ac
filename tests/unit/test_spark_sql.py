"""The Spark SQL text of jobs/spark_sql.py: literals, and the two MERGE statements of the lake."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from jobs.spark_sql import merge, string_literal, timestamp_literal


def test_literals():
    assert string_literal("it's a \\ test") == "'it\\'s a \\\\ test'"
    assert timestamp_literal(datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=1)))) == \
        "TIMESTAMP'2026-11-23T09:00:00+00:00'"


def test_the_streaming_jobs_merge_updates_every_matched_bar():
    assert merge("lake.bars", "global_temp.v", ("symbol", "window_start"), update=["symbol", "open", "updated_at"]) == (
        "MERGE INTO lake.bars t USING global_temp.v s ON t.symbol = s.symbol AND t.window_start = s.window_start "
        "WHEN MATCHED THEN UPDATE SET t.symbol = s.symbol, t.open = s.open, t.updated_at = s.updated_at "
        "WHEN NOT MATCHED THEN INSERT *")


def test_the_rollups_merge_rewrites_only_changed_bars_and_deletes_in_its_range():
    assert merge("lake.bars_5m", "v", ("symbol", "window_start"), when_changed=["open", "vwap"],
                 delete_when="t.symbol IN ('A')") == (
        "MERGE INTO lake.bars_5m t USING v s ON t.symbol = s.symbol AND t.window_start = s.window_start "
        "WHEN MATCHED AND (NOT (t.open <=> s.open) OR NOT (t.vwap <=> s.vwap)) THEN UPDATE SET * "
        "WHEN NOT MATCHED THEN INSERT * "
        "WHEN NOT MATCHED BY SOURCE AND t.symbol IN ('A') THEN DELETE")
