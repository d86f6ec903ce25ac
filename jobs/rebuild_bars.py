"""Batch job: recompute 1-minute bars from the Iceberg raw trades and upsert them into both stores.

    ./spark-submit.sh jobs/rebuild_bars.py --start 2026-11-23T09:00 --end 2026-11-23T10:00 [--symbol AAPL ...]

The repair path for bars that were lost (expired or deleted) and the backfill
path for replayed history. It uses the streaming job's own bar transform on every stored
trade of the range, so its bars equal the streaming bars for the same trades. The range is
widened to whole minutes, so no bar is rebuilt from part of its trades.
"""
from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import sinks, transforms
from jobs.session import build_session, iceberg_table
from ticklake import arguments
from ticklake.config import Settings
from ticklake.logs import configure_logging
from ticklake.times import MINUTE, shown, whole

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


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", required=True, type=arguments.time, help="ISO time, UTC unless it has an offset")
    parser.add_argument("--end", required=True, type=arguments.time)
    parser.add_argument("--symbol", action="append", default=[], type=arguments.symbol,
                        help="repeat for several; default: all")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.start >= args.end:
        parser.error(f"--start {shown(args.start)} is not before --end {shown(args.end)}")
    settings = Settings()
    spark = build_session(settings, "ticklake-rebuild-bars")
    spark.sparkContext.setLogLevel("WARN")
    try:
        count = rebuild(spark, settings, args.start, args.end, args.symbol)
    finally:
        spark.stop()
    log.info("rebuilt %d bars of %s from %s to %s", count, ", ".join(args.symbol) or "all symbols",
             args.start, args.end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
