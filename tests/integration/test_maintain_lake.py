"""The maintenance job on real Spark and a real lake: fewer files, expired snapshots, orphans
gone, and the same rows before and after from pyiceberg and from Spark."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest

from jobs.maintain_lake import maintain
from tests.lake_rows import append, bar, trade
from ticklake import lake

pytestmark = pytest.mark.integration

DAY1 = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
COMMITS = 10


def rows_from_pyiceberg(settings, identifier) -> list[tuple]:
    table = lake.catalog(settings).load_table(identifier).scan().to_arrow()
    return sorted(tuple(_plain(v) for v in row.values()) for row in table.to_pylist())


def rows_from_spark(spark, settings, identifier) -> list[tuple]:
    rows = spark.table(f"{settings.iceberg.catalog_name}.{identifier}").collect()
    return sorted(tuple(_plain(v) for v in row) for row in rows)


def _plain(value):
    """Timestamps as UTC epoch seconds, whichever engine read them (Spark: naive UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return tuple(value) if isinstance(value, list) else value


def files_on_disk(settings, table: str) -> set[str]:
    data = settings.iceberg.warehouse / settings.iceberg.namespace / table / "data"
    return {str(p) for p in data.rglob("*.parquet")}


def test_compacts_expires_and_removes_orphans_keeping_every_row(lake_spark, spark_lake_settings):
    settings = spark_lake_settings.model_copy(update={"maintenance": spark_lake_settings.maintenance.model_copy(
        update={"min_input_files": 2, "snapshot_max_age_hours": 0, "retain_last_snapshots": 2,
                "orphan_min_age_hours": 24})})
    ice = settings.iceberg
    tables = {t.name()[-1]: t for t in lake.ensure_tables(settings)}
    bars_id, trades_id = f"{ice.namespace}.{ice.bars_table}", f"{ice.namespace}.{ice.trades_table}"
    for i in range(COMMITS):  # each commit: one small file in each of two day partitions
        append(tables[ice.bars_table], [bar("AAPL", day + timedelta(minutes=i), close=1.0 + i) for day in (DAY1, DAY2)])
        append(tables[ice.trades_table], [trade("AAPL", day + timedelta(seconds=i), i) for day in (DAY1, DAY2)])

    bars_dir = ice.warehouse / ice.namespace / ice.bars_table / "data"
    old_orphan, new_orphan = bars_dir / "left-by-a-killed-write.parquet", bars_dir / "being-written.parquet"
    for orphan in (old_orphan, new_orphan):
        orphan.write_bytes(b"not referenced by any snapshot")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_orphan, (two_days_ago, two_days_ago))

    before = {t: (rows_from_pyiceberg(settings, t), rows_from_spark(lake_spark, settings, t)) for t in (bars_id, trades_id)}
    disk_before = files_on_disk(settings, ice.bars_table)

    began = time.monotonic()
    quarantine_id = f"{ice.namespace}.{ice.quarantine_table}"  # empty: nothing to do, no error
    reports = {r.table: r for r in maintain(lake_spark, settings, [bars_id, trades_id, quarantine_id],
                                            now=datetime.now(timezone.utc))}
    print(f"maintenance of {len(reports)} tables took {time.monotonic() - began:.1f} s")
    for report in reports.values():
        print(report.summary())

    bars = reports[bars_id]
    assert (bars.data_files_before, bars.data_files_after) == (2 * COMMITS, 2)
    assert (bars.rewritten_data_files, bars.added_data_files) == (2 * COMMITS, 2)
    # Every append is older than `now` and beyond the 2 kept: expired. What is left are the
    # maintenance's own commits (compaction per partition, manifest rewrite), made after `now`.
    assert bars.snapshots_before == COMMITS and bars.expired_snapshots == COMMITS
    remaining = lake.catalog(settings).load_table(bars_id).snapshots()
    assert len(remaining) == bars.snapshots_after and {s.summary.operation.value for s in remaining} == {"replace"}
    assert bars.orphan_files_removed == 1 and not old_orphan.exists() and new_orphan.exists()
    assert reports[trades_id].data_files_after == 2 and reports[trades_id].orphan_files_removed == 0
    assert len(files_on_disk(settings, ice.bars_table)) < len(disk_before)
    assert reports[quarantine_id].data_files_after == 0

    for table, (iceberg_rows, spark_rows) in before.items():
        assert len(iceberg_rows) == 2 * COMMITS
        assert iceberg_rows == spark_rows, table
        assert rows_from_pyiceberg(settings, table) == iceberg_rows, table
        assert rows_from_spark(lake_spark, settings, table) == spark_rows, table
