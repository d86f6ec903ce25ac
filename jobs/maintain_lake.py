"""Batch job: keep the lake's tables fast to read and bounded in size.

    ./spark-submit.sh jobs/maintain_lake.py [--table bars_1m ...]

For each lake table (every table of ``ticklake.lake.table_specs``, or the ``--table``
ones), in this order:

1. compact small data files into files of ``maintenance.target_file_size_mb``
   (``rewrite_data_files``, bin-packing partitions with ``maintenance.min_input_files``
   or more files), then rewrite the manifests (one per partition range instead of one per
   commit);
2. expire snapshots older than ``maintenance.snapshot_max_age_hours``, keeping the newest
   ``maintenance.retain_last_snapshots`` whatever their age, and delete the files only
   they referred to (time travel reaches back as far as the oldest snapshot kept);
3. delete orphan files (in the table's folder, referenced by no snapshot) older than
   ``maintenance.orphan_min_age_hours``: leftovers of failed or killed writes.

None of it changes what a reader of the current snapshot sees. It prints a summary per
table and, last, one JSON line ``{"maintenance": {...}}`` for machines.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from pyspark.sql import SparkSession

from jobs.job import run_job
from jobs.options import MaintainOptions
from ticklake.config import MaintenanceSettings, Settings
from ticklake.lake import table_specs

log = logging.getLogger("ticklake.maintain_lake")
MB = 1024 * 1024


@dataclass
class TableReport:
    table: str
    data_files_before: int = 0
    data_files_after: int = 0
    snapshots_before: int = 0
    snapshots_after: int = 0
    rewritten_data_files: int = 0
    added_data_files: int = 0
    rewritten_bytes: int = 0
    rewritten_manifests: int = 0
    added_manifests: int = 0
    expired_snapshots: int = 0
    deleted_files: int = 0  # data files, manifests and manifest lists only expired snapshots used
    orphan_files_removed: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.table}: data files {self.data_files_before} -> {self.data_files_after} "
                f"({self.rewritten_data_files} compacted into {self.added_data_files}, "
                f"{self.rewritten_bytes / MB:.1f} MB), snapshots {self.snapshots_before} -> {self.snapshots_after} "
                f"({self.expired_snapshots} expired, {self.deleted_files} files deleted with them), "
                f"{self.orphan_files_removed} orphan files removed, {self.seconds:.1f} s")


def _timestamp(value: datetime) -> str:
    return f"TIMESTAMP '{value.astimezone(timezone.utc).isoformat()}'"


def _count(spark: SparkSession, table: str, metadata: str) -> int:
    return spark.table(f"{table}.{metadata}").count()


def _call(spark: SparkSession, catalog: str, procedure: str, **arguments: str):
    args = ", ".join(f"{name} => {value}" for name, value in arguments.items())
    return spark.sql(f"CALL {catalog}.system.{procedure}({args})").collect()


def maintain_table(spark: SparkSession, catalog: str, identifier: str, options: MaintenanceSettings,
                   now: datetime) -> TableReport:
    began = time.monotonic()
    table, name = f"{catalog}.{identifier}", f"'{identifier}'"
    report = TableReport(identifier, data_files_before=_count(spark, table, "files"),
                         snapshots_before=_count(spark, table, "snapshots"))
    if report.snapshots_before:
        # Partial progress: a file group whose files a concurrent MERGE rewrote fails alone.
        compaction = (f"map('target-file-size-bytes', '{options.target_file_size_mb * MB}', "
                      f"'min-input-files', '{options.min_input_files}', 'partial-progress.enabled', 'true')")
        (rewrite,) = _call(spark, catalog, "rewrite_data_files", table=name, options=compaction)
        report.rewritten_data_files = rewrite.rewritten_data_files_count
        report.added_data_files = rewrite.added_data_files_count
        report.rewritten_bytes = rewrite.rewritten_bytes_count
        (manifests,) = _call(spark, catalog, "rewrite_manifests", table=name)
        report.rewritten_manifests = manifests.rewritten_manifests_count
        report.added_manifests = manifests.added_manifests_count
        snapshots = _count(spark, table, "snapshots")
        (expired,) = _call(spark, catalog, "expire_snapshots", table=name,
                           older_than=_timestamp(now - timedelta(hours=options.snapshot_max_age_hours)),
                           retain_last=str(options.retain_last_snapshots))
        report.deleted_files = (expired.deleted_data_files_count + expired.deleted_manifest_files_count
                                + expired.deleted_manifest_lists_count)
        report.snapshots_after = _count(spark, table, "snapshots")
        report.expired_snapshots = snapshots - report.snapshots_after
    orphans = _call(spark, catalog, "remove_orphan_files", table=name,
                    older_than=_timestamp(now - timedelta(hours=options.orphan_min_age_hours)))
    report.orphan_files_removed = len(orphans)
    report.data_files_after = _count(spark, table, "files")
    report.seconds = round(time.monotonic() - began, 2)
    return report


def maintain(spark: SparkSession, settings: Settings, tables: list[str] | None = None,
             now: datetime | None = None) -> list[TableReport]:
    """Maintain ``tables`` (identifiers ``namespace.table``; default: every lake table)."""
    now = now or datetime.now(timezone.utc)
    catalog = settings.iceberg.catalog_name
    reports = []
    for identifier in tables or list(table_specs(settings)):
        if not spark.catalog.tableExists(f"{catalog}.{identifier}"):
            log.warning("no table %s in the lake (ticklake up creates it): skipped", identifier)
            continue
        log.info("maintaining %s ...", identifier)
        reports.append(maintain_table(spark, catalog, identifier, settings.maintenance, now))
    return reports


def run(spark: SparkSession, settings: Settings, options: MaintainOptions) -> int:
    reports = maintain(spark, settings, options.tables or None)
    for report in reports:
        print(report.summary())
    print(json.dumps({"maintenance": {"settings": settings.maintenance.model_dump(),
                                      "tables": [asdict(report) for report in reports]}}))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job(__doc__, MaintainOptions, "ticklake-maintain-lake", run, argv)


if __name__ == "__main__":
    sys.exit(main())
