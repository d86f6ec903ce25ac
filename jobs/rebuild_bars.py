"""Batch job: recompute 1-minute bars from the Iceberg raw trades and upsert them into both stores.

    ./spark-submit.sh jobs/rebuild_bars.py --start 2026-11-23T09:00 --end 2026-11-23T10:00 [--symbol AAPL ...]

The repair path for bars that were lost (expired or deleted) and the backfill
path for replayed history. It uses the streaming job's own bar transform on every stored
trade of the range, so its bars equal the streaming bars for the same trades. The range is
widened to whole minutes, so no bar is rebuilt from part of its trades.
"""
from __future__ import annotations

import logging
import sys
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import sinks, transforms
from jobs.job import run_job
from jobs.options import RebuildOptions
from jobs.session import iceberg_table
from ticklake.config import Settings
from ticklake.times import MINUTE, whole

log = logging.getLogger("ticklake.rebuild_bars")


def stored_trades(spark: SparkSession, settings: Settings, start: datetime, end: datetime,
                  symbols: list[str]) -> DataFrame:
    trades = spark.table(iceberg_table(settings, settings.iceberg.trades_table)).where(
        (F.col("trade_ts") >= F.lit(start)) & (F.col("trade_ts") < F.lit(end))
    )
    return trades.where(F.col("symbol").isin(symbols)) if symbols else trades


def rebuild(spark: SparkSession, settings: Settings, start: datetime, end: datetime, symbols: list[str]) -> int:
    """Rebuild the bars of ``[start, end)`` widened to whole minutes; returns how many were written."""
    start, end = whole(start, end, MINUTE)
    bars = transforms.one_minute_bars(stored_trades(spark, settings, start, end, symbols)).persist()
    try:
        count = bars.count()
        if count:
            sinks.write_cassandra(bars, settings.cassandra.keyspace, settings.cassandra.bars_table)
            sinks.merge_bars_iceberg(spark, bars, iceberg_table(settings, settings.iceberg.bars_table))
        return count
    finally:
        bars.unpersist()


def run(spark: SparkSession, settings: Settings, options: RebuildOptions) -> int:
    count = rebuild(spark, settings, options.start, options.end, options.symbols)
    log.info("rebuilt %d bars of %s from %s to %s", count, ", ".join(options.symbols) or "all symbols",
             options.start, options.end)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job(__doc__, RebuildOptions, "ticklake-rebuild-bars", run, argv)


if __name__ == "__main__":
    sys.exit(main())
