"""1-minute bars to a coarser timeframe, per symbol.

A period's bar aggregates the 1-minute bars that start in it: first open, highest high, lowest
low, last close, summed volume and trade count, volume-weighted vwap. Periods without any bar
get no bar (no trade is not a zero price), so the result may have gaps; strategies see bars,
not clock time.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ticklake.timeframes import RESAMPLED, pandas_frequency

COLUMNS = ["open", "high", "low", "close", "volume", "trade_count", "vwap"]


def resample(bars: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """``bars`` (columns window_start and COLUMNS, one symbol, any order) aggregated to
    ``timeframe``, indexed by the period start (UTC) and sorted. UTC periods: days start at 00:00 UTC."""
    if timeframe not in RESAMPLED:
        raise ValueError(f"unknown timeframe {timeframe!r}: one of {', '.join(RESAMPLED)}")
    if bars.empty:
        return pd.DataFrame(columns=COLUMNS, index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype=float)
    bars = bars.sort_values("window_start", kind="stable")
    starts = pd.DatetimeIndex(bars["window_start"])
    starts = starts.tz_localize("UTC") if starts.tz is None else starts.tz_convert("UTC")
    period = starts.floor(pandas_frequency(timeframe))
    keys = period.asi8
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    last = np.append(first[1:] - 1, len(keys) - 1)
    volume = bars["volume"].to_numpy(np.float64)
    vwap = bars["vwap"].to_numpy(np.float64, na_value=np.nan)
    traded = np.add.reduceat(np.where(np.isnan(vwap), 0.0, vwap * volume), first)
    total_volume = np.add.reduceat(volume, first)
    with np.errstate(invalid="ignore", divide="ignore"):
        period_vwap = np.where(total_volume > 0, traded / total_volume, np.nan)
    return pd.DataFrame({
        "open": bars["open"].to_numpy(np.float64)[first],
        "high": np.maximum.reduceat(bars["high"].to_numpy(np.float64), first),
        "low": np.minimum.reduceat(bars["low"].to_numpy(np.float64), first),
        "close": bars["close"].to_numpy(np.float64)[last],
        "volume": total_volume,
        "trade_count": np.add.reduceat(bars["trade_count"].to_numpy(np.int64), first),
        "vwap": period_vwap,
    }, index=pd.DatetimeIndex(period[first], name="time"))
