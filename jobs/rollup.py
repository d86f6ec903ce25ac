"""Pure transform of the rollup job: 1-minute bars -> bars of a longer timeframe.

Windows are aligned on the UTC epoch, so 5-minute bars start at :00, :05, ..., hourly ones
on the hour and daily ones at 00:00 UTC. A rolled-up bar exists only where there is at
least one 1-minute bar (a period without trades has no bar, not a zero bar).
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.transforms import window_bars


def roll_up(bars: DataFrame, seconds: int) -> DataFrame:
    """1-minute bars (``Bar`` columns) -> ``seconds``-long bars (``Bar`` columns).

    open is the open of the earliest 1-minute bar by ``window_start``, close the close of
    the latest; high and low are max and min; volume and trade_count add up; vwap is the
    volume-weighted mean of the 1-minute vwaps (``sum(vwap * volume) / sum(volume)``),
    null when the volume is 0.
    """
    grouped = bars.groupBy("symbol", F.window("window_start", f"{seconds} seconds").alias("w")).agg(
        F.min_by("open", "window_start").alias("open"),
        F.max("high").alias("high"),
        F.min("low").alias("low"),
        F.max_by("close", "window_start").alias("close"),
        F.sum("volume").alias("volume"),
        F.sum("trade_count").alias("trade_count"),
        F.sum(F.col("vwap") * F.col("volume")).alias("notional"),
    )
    return window_bars(grouped)
