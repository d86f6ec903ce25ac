"""``ticklake chart``: a symbol's bars as a self-contained HTML candlestick chart with volume
(inline SVG, no scripts, nothing fetched), drawn like the backtest reports' charts.

The 1-minute bars come from Cassandra, or from the lake as of a time or snapshot (``as_of``),
and are aggregated to the timeframe as a backtest does (``ticklake.backtest.resample``).
"""
from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from schemas.models import BAR_COLUMNS
from ticklake import lake_query, query
from ticklake.backtest.report import Chart
from ticklake.backtest.resample import resample
from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.times import shown

UP, DOWN = "#1a7f37", "#cf222e"  # candles whose close is not below / below their open
UP_VOLUME, DOWN_VOLUME = "#8fd19e", "#f5a3a8"
MAX_CANDLES = 5000


def minute_bars(settings: Settings, symbol: str, start: datetime, end: datetime,
                as_of: str | None = None) -> pd.DataFrame:
    """``symbol``'s 1-minute bars with ``start <= window_start < end`` (BAR_COLUMNS), from
    Cassandra, or from the lake as it was at ``as_of``."""
    rows = (lake_query.read(settings, "bars", symbol, start, end, as_of=as_of) if as_of
            else query.bars(settings, symbol, start, end))
    return pd.DataFrame([{c: getattr(row, c) for c in BAR_COLUMNS} for row in rows], columns=BAR_COLUMNS)


def render(symbol: str, bars: pd.DataFrame, timeframe: str, source: str) -> str:
    """The chart page of ``bars`` (resampled: indexed by period start, columns open ... vwap)."""
    if len(bars) > MAX_CANDLES:
        raise UserError(f"{len(bars)} candles of {timeframe} are too many to draw (at most {MAX_CANDLES}): "
                        "choose a longer --timeframe or a shorter range")
    times = bars.index
    price = Chart(len(bars), float(bars["low"].min()), float(bars["high"].max()), 420)
    price.candles(bars, UP, DOWN)
    volume = Chart(len(bars), 0.0, float(bars["volume"].max()), 140)
    volume.columns(bars["volume"].to_numpy(), [UP_VOLUME if c >= o else DOWN_VOLUME
                                               for o, c in zip(bars["open"], bars["close"])])
    first, last = times[0], times[-1]
    title = f"{symbol} {timeframe} bars"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:24px}} h2{{font-size:15px;margin:12px 0 4px}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{len(bars)} bars from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC (period starts), {html.escape(source)}.
Hover a candle for its values.</p>
{price.svg("Price: open, high, low, close", times)}
{volume.svg("Volume", times)}</body></html>"""


def default_path(settings: Settings, symbol: str, timeframe: str, start: datetime) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", symbol)
    return settings.state_dir / "charts" / f"{name}-{timeframe}-{start:%Y%m%dT%H%M}.html"


def write_chart(settings: Settings, symbol: str, start: datetime, end: datetime, timeframe: str = "1m",
                as_of: str | None = None, out: Path | None = None) -> tuple[Path, int]:
    """Write the chart of ``symbol``'s bars in ``[start, end)``; its path and number of candles.
    A ``UserError`` when there are no bars."""
    minutes = minute_bars(settings, symbol, start, end, as_of)
    if minutes.empty:
        where = f"the lake as of {as_of}" if as_of else "Cassandra"
        raise UserError(f"no bars of {symbol} from {shown(start)} to {shown(end)} in {where}; "
                        "check the symbol and the range ('ticklake query bars' shows what there is)")
    bars = resample(minutes, timeframe)
    source = (f"from the lake as of {as_of}" if as_of
              else f"from Cassandra ({settings.cassandra.qualified(settings.cassandra.bars_table)})")
    path = out or default_path(settings, symbol, timeframe, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(symbol, bars, timeframe, source), encoding="utf-8")
    return path, len(bars)
