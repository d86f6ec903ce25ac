"""Batch job: roll the lake's 1-minute bars up into 5-minute, hourly and daily bars.

    ./spark-submit.sh jobs/rollup_bars.py [--days 2 | --start 2026-11-22 --end 2026-11-24]
                                          [--timeframe 1d ...] [--symbol AAPL ...]

Each timeframe has its own Iceberg table (``iceberg.rollup_tables``) with the ``Bar``
columns. The range is widened to whole UTC days and the rolled-up bars of that range are
replaced by what the 1-minute bars give now: bars that changed are updated, new ones
inserted, and ones whose minutes are gone deleted, in one MERGE per table. Running it again
on unchanged minutes changes no row, so it is safe to repeat and to schedule with an
overlap (the default, the last two days, picks up late trades repaired by rebuild_bars).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.rollup import roll_up
from jobs.job import run_job
from jobs.options import RollupOptions
from jobs.session import iceberg_table
from jobs.sinks import shared_view
from jobs.spark_sql import merge, string_literal, timestamp_literal
from schemas.models import Bar
from ticklake.config import Settings
from ticklake.times import DAY, whole
from ticklake.timeframes import rollup_seconds

log = logging.getLogger("ticklake.rollup_bars")
KEY = ("symbol", "window_start")
VALUES = [name for name in Bar.model_fields if name not in (*KEY, "updated_at")]


def replace_range(spark: SparkSession, rolled: DataFrame, table: str, start: datetime, end: datetime,
                  symbols: list[str]) -> None:
    """Make ``table``'s bars in ``[start, end)`` (of ``symbols``, or all) equal to ``rolled``."""
    in_range = f"t.window_start >= {timestamp_literal(start)} AND t.window_start < {timestamp_literal(end)}"
    if symbols:
        in_range += f" AND t.symbol IN ({', '.join(string_literal(s) for s in symbols)})"
    with shared_view(rolled) as view:
        spark.sql(merge(table, view, KEY, when_changed=VALUES, delete_when=in_range))


def minute_bars(spark: SparkSession, settings: Settings, start: datetime, end: datetime,
                symbols: list[str]) -> DataFrame:
    bars = spark.table(iceberg_table(settings, settings.iceberg.bars_table)).where(
        (F.col("window_start") >= F.lit(start)) & (F.col("window_start") < F.lit(end))
    )
    return bars.where(F.col("symbol").isin(symbols)) if symbols else bars


def rollup(spark: SparkSession, settings: Settings, start: datetime, end: datetime, timeframes: list[str],
           symbols: list[str]) -> dict[str, int]:
    """Roll up ``[start, end)`` widened to whole days; returns the number of bars per timeframe."""
    start, end = whole(start, end, DAY)
    minutes = minute_bars(spark, settings, start, end, symbols).persist()
    counts = {}
    try:
        for timeframe in timeframes:
            rolled = roll_up(minutes, rollup_seconds(timeframe)).persist()
            try:
                table = iceberg_table(settings, settings.iceberg.rollup_tables[timeframe])
                replace_range(spark, rolled, table, start, end, symbols)
                counts[timeframe] = rolled.count()
            finally:
                rolled.unpersist()
    finally:
        minutes.unpersist()
    return counts


def run(spark: SparkSession, settings: Settings, options: RollupOptions) -> int:
    began = time.monotonic()
    counts = rollup(spark, settings, options.start, options.end, options.timeframes, options.symbols)
    start, end = whole(options.start, options.end, DAY)
    for timeframe, count in counts.items():
        print(f"{timeframe:>4}: {count} bars from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive) in "
              f"{settings.iceberg.rollup_tables[timeframe]}")
    print(json.dumps({"rollup": {"start": start.isoformat(), "end": end.isoformat(), "bars": counts,
                                 "symbols": options.symbols or "all", "seconds": round(time.monotonic() - began, 1)}}))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job(__doc__, RollupOptions, "ticklake-rollup-bars", run, argv)


if __name__ == "__main__":
    sys.exit(main())
