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

import argparse
import json
import logging
import sys
import time
from datetime import datetime, timedelta, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.rollup import roll_up
from jobs.session import build_session, iceberg_table
from jobs.sinks import shared_view
from jobs.spark_sql import merge, string_literal, timestamp_literal
from schemas.models import Bar
from ticklake import arguments
from ticklake.config import Settings
from ticklake.logs import configure_logging
from ticklake.times import DAY, floor_time, shown, whole
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


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=arguments.time, help="ISO time, UTC unless it has an offset (widened to 00:00)")
    parser.add_argument("--end", type=arguments.time, help="ISO time (widened to the next 00:00; default: now)")
    parser.add_argument("--days", type=int, default=2, help="without --start: this many UTC days up to --end")
    parser.add_argument("--timeframe", action="append", choices=sorted(settings.iceberg.rollup_tables),
                        help="repeat for several; default: every configured one")
    parser.add_argument("--symbol", action="append", default=[], type=arguments.symbol,
                        help="repeat for several; default: all")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    end = args.end or datetime.now(timezone.utc)
    start = args.start or floor_time(end, DAY) - timedelta(days=args.days - 1)
    if start >= end:
        parser.error(f"--start {shown(start)} is not before --end {shown(end)}")
    timeframes = args.timeframe or list(settings.iceberg.rollup_tables)
    spark = build_session(settings, "ticklake-rollup-bars")
    spark.sparkContext.setLogLevel("WARN")
    began = time.monotonic()
    try:
        counts = rollup(spark, settings, start, end, timeframes, args.symbol)
    finally:
        spark.stop()
    start, end = whole(start, end, DAY)
    for timeframe, count in counts.items():
        print(f"{timeframe:>4}: {count} bars from {start:%Y-%m-%d} to {end:%Y-%m-%d} (exclusive) in "
              f"{settings.iceberg.rollup_tables[timeframe]}")
    print(json.dumps({"rollup": {"start": start.isoformat(), "end": end.isoformat(), "bars": counts,
                                 "symbols": args.symbol or "all", "seconds": round(time.monotonic() - began, 1)}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
