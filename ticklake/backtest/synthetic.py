"""Synthetic 1-minute bars (a geometric random walk in US trading hours) and bars into the lake:
for the benchmark, the tests and trying backtests without a feed."""
from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
from pyiceberg.table import Table

from schemas.derive import iceberg_schema
from schemas.models import Bar
from ticklake import lake
from ticklake.config import Settings

SESSION_OPEN_UTC = pd.Timedelta(hours=14, minutes=30)
SESSION_MINUTES = 390


def minute_bars(symbols: list[str], days: int, seed: int, first_day: date = date(2025, 1, 2)) -> pd.DataFrame:
    """``days`` weekdays of 390 one-minute bars per symbol, columns as the Bar model."""
    rng = np.random.default_rng(seed)
    sessions = pd.bdate_range(first_day, periods=days, tz="UTC") + SESSION_OPEN_UTC
    opens = sessions.tz_convert(None).to_numpy()  # naive UTC
    starts = (opens[:, None] + np.arange(SESSION_MINUTES) * np.timedelta64(1, "m")).ravel()
    n = len(starts)
    frames = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
        open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.0002, n))
        wiggle = np.abs(rng.normal(0, 0.0004, n))
        frames.append(pd.DataFrame({
            "symbol": symbol, "window_start": starts, "open": open_, "high": np.maximum(open_, close) * (1 + wiggle),
            "low": np.minimum(open_, close) * (1 - wiggle), "close": close,
            "volume": rng.integers(1, 500, n).astype(np.float64), "trade_count": rng.integers(1, 50, n),
        }))
    bars = pd.concat(frames, ignore_index=True)
    bars["vwap"] = (bars["open"] + bars["high"] + bars["low"] + bars["close"]) / 4
    return bars


def write_bars(settings: Settings, table: str, bars: pd.DataFrame, width: pd.Timedelta = pd.Timedelta(minutes=1)
               ) -> None:
    """Replace the lake table ``table`` with ``bars`` (columns symbol, window_start, open, high,
    low, close, volume, trade_count, optional vwap; window_start naive UTC or tz-aware), each
    bar ``width`` long."""
    bars = bars.copy()
    bars["window_start"] = pd.to_datetime(bars["window_start"], utc=True).astype("datetime64[us, UTC]")
    bars["window_end"] = bars["window_start"] + width
    bars["trade_date"] = bars["window_start"].dt.date
    bars["trade_count"] = bars["trade_count"].astype("int64")
    bars["updated_at"] = pd.Timestamp(datetime.now(timezone.utc)).as_unit("us")
    if "vwap" not in bars:
        bars["vwap"] = np.nan
    schema = iceberg_schema(Bar).as_arrow()
    arrow = pa.Table.from_pandas(bars[schema.names], schema=schema, preserve_index=False)
    _recreate_bars_table(settings, table).append(arrow)


def _recreate_bars_table(settings: Settings, table: str) -> Table:
    """An empty bars table ``table`` (``Bar`` columns, partitioned by day) in the lake's
    namespace, dropped first if it exists: for benchmarks and tests that bring their own bars."""
    cat = lake.catalog(settings)
    cat.create_namespace_if_not_exists(settings.iceberg.namespace)
    schema = iceberg_schema(Bar)
    spec = lake.time_partitioning(schema, "window_start")
    identifier = lake.identifier(settings, table)
    if cat.table_exists(identifier):
        cat.purge_table(identifier)
    return cat.create_table(identifier, schema=schema, partition_spec=spec)
