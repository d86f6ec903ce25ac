"""A run's report: one self-contained HTML file (inline SVG, no scripts) with the price and its
trades, the equity curve, the drawdown, the metrics and the trade list. ``Chart`` draws the SVG
charts, here and in ``ticklake chart`` (ticklake/chart.py)."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

WIDTH, PAD = 1000, 48
MAX_POINTS = 1500  # per chart: longer series are drawn as the min/max of each bucket


def _envelope(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bar positions, values) to draw: all of them, or each bucket's min and max."""
    n = len(values)
    if n <= MAX_POINTS:
        return np.arange(n), values
    edges = np.linspace(0, n, MAX_POINTS // 2 + 1).astype(int)
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        chunk = values[lo:hi]
        first, second = sorted((lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk))))
        xs += [first, second]
        ys += [values[first], values[second]]
    return np.array(xs), np.array(ys)


class Chart:
    """A chart of ``n`` evenly spaced bars, values from ``low`` to ``high``, ``height`` pixels high."""

    def __init__(self, n: int, low: float, high: float, height: int) -> None:
        self.n, self.height = max(n, 2), height
        self.low, self.high = (low, high) if high > low else (low - 1, low + 1)
        self.parts: list[str] = []

    def x(self, positions) -> np.ndarray:
        return PAD + np.asarray(positions) * (WIDTH - 2 * PAD) / (self.n - 1)

    def y(self, values) -> np.ndarray:
        return 10 + (self.high - np.asarray(values)) * (self.height - 30) / (self.high - self.low)

    def line(self, values: np.ndarray, color: str, fill: bool = False) -> None:
        xs, ys = _envelope(values)
        points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(self.x(xs), self.y(ys)))
        if fill:
            base = self.y(0.0)
            points = f"{self.x(xs[0]):.1f},{base:.1f} {points} {self.x(xs[-1]):.1f},{base:.1f}"
            self.parts.append(f'<polygon points="{points}" fill="{color}" fill-opacity="0.35" stroke="{color}"/>')
        else:
            self.parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.2"/>')

    def markers(self, positions, values, shape: str, color: str, titles: list[str]) -> None:
        for x, y, title in zip(self.x(positions), self.y(values), titles):
            path = {"up": f"M{x:.1f},{y - 7:.1f} l-5,9 h10 z", "down": f"M{x:.1f},{y + 7:.1f} l-5,-9 h10 z",
                    "x": f"M{x - 4:.1f},{y - 4:.1f} l8,8 m0,-8 l-8,8"}[shape]
            self.parts.append(f'<path d="{path}" fill="{color}" stroke="{color}" stroke-width="1.5">'
                              f"<title>{html.escape(title)}</title></path>")

    def half_width(self) -> float:
        """Half the width of a candle or column: 70 % of the space per bar, at least a pixel."""
        return max(0.5, 0.35 * (WIDTH - 2 * PAD) / (self.n - 1))

    def candles(self, bars: pd.DataFrame, up: str, down: str) -> None:
        """A candle per bar (columns open, high, low, close): the body from open to close, a wick
        from low to high; ``up`` where the close is not below the open, else ``down``."""
        half = self.half_width()
        for x, (when, o, h, lo, c, v) in zip(self.x(np.arange(len(bars))), bars[
                ["open", "high", "low", "close", "volume"]].itertuples()):
            color = up if c >= o else down
            top, bottom = self.y(max(o, c)), self.y(min(o, c))
            title = f"{when:%Y-%m-%d %H:%M}  open {o:g}  high {h:g}  low {lo:g}  close {c:g}  volume {v:g}"
            self.parts.append(
                f'<g class="candle" fill="{color}" stroke="{color}" shape-rendering="crispEdges">'
                f'<title>{html.escape(title)}</title><line x1="{x:.1f}" y1="{self.y(h):.1f}" x2="{x:.1f}" '
                f'y2="{self.y(lo):.1f}"/><rect x="{x - half:.1f}" y="{top:.1f}" width="{2 * half:.1f}" '
                f'height="{max(bottom - top, 1.0):.1f}"/></g>')

    def columns(self, values, colors: list[str]) -> None:
        """A column per bar from 0 up to its value, each in its colour."""
        half, base = self.half_width(), self.y(0.0)
        for x, y, color in zip(self.x(np.arange(len(values))), self.y(values), colors):
            self.parts.append(f'<rect class="volume" x="{x - half:.1f}" y="{y:.1f}" width="{2 * half:.1f}" '
                              f'height="{max(base - y, 0.0):.1f}" fill="{color}" shape-rendering="crispEdges"/>')

    def svg(self, title: str, times: pd.DatetimeIndex, percent: bool = False) -> str:
        label = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:,.4g}")
        axis = [f'<text x="4" y="{self.y(v) + 4:.1f}" font-size="10">{label(v)}</text>' for v in (self.low, self.high)]
        for pos in np.linspace(0, len(times) - 1, 5).astype(int) if len(times) else []:
            axis.append(f'<text x="{self.x(pos):.1f}" y="{self.height - 4}" font-size="10" text-anchor="middle">'
                        f"{times[pos]:%Y-%m-%d %H:%M}</text>")
        return (f'<h2>{html.escape(title)}</h2><svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
                f'height="{self.height}" style="background:#fafafa">{"".join(axis + self.parts)}</svg>')


def render(run: dict, bars: pd.DataFrame, trades: pd.DataFrame, equity: pd.DataFrame) -> str:
    """The report of one run. ``run`` is its BacktestRun row, ``trades`` and ``equity`` its rows of
    the trades and equity tables, ``bars`` the bars it ran on (indexed by time)."""
    times, close = bars.index, bars["close"].to_numpy()
    price = Chart(len(bars), float(bars["low"].min()), float(bars["high"].max()), 320)
    price.line(close, "#333")
    pos = times.get_indexer
    for side, shape, color in ((1, "up", "#1a7f37"), (-1, "down", "#cf222e")):
        entries = trades[np.sign(trades["units"]) == side]
        price.markers(pos(entries["entry_time"]), entries["entry_price"], shape, color,
                      [f"{'buy' if side > 0 else 'sell short'} {abs(u):g} at {p:g}, {t}"
                       for u, p, t in zip(entries["units"], entries["entry_price"], entries["entry_time"])])
    closed = trades[~trades["is_open"]]
    price.markers(pos(closed["exit_time"]), closed["exit_price"], "x", "#555",
                  [f"exit at {p:g}, {t}, P&L {pnl:,.2f}"
                   for p, t, pnl in zip(closed["exit_price"], closed["exit_time"], closed["pnl"])])
    eq = equity["equity"].to_numpy()
    equity_chart = Chart(len(eq), float(min(eq.min(), run["cash"])), float(max(eq.max(), run["cash"])), 220)
    equity_chart.line(eq, "#0969da")
    dd = -equity["drawdown"].to_numpy()
    dd_chart = Chart(len(dd), float(min(dd.min(), -1e-9)), 0.0, 160)
    dd_chart.line(dd, "#cf222e", fill=True)
    metrics = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(run[k]))}</td></tr>" for k in (
        "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar", "trades", "win_rate",
        "profit_factor", "exposure", "final_equity"))
    about = "".join(f"<tr><th>{k}</th><td>{html.escape(str(run[k]))}</td></tr>" for k in (
        "run_id", "strategy", "params", "symbol", "timeframe", "first_bar", "last_bar", "bars", "cash", "commission",
        "slippage", "allow_short", "bars_table", "bars_snapshot_id", "code_version"))
    rows = "".join(
        f"<tr><td>{r.trade_no}</td><td>{r.units:g}</td><td>{r.entry_time}</td><td>{r.entry_price:g}</td>"
        f"<td>{r.exit_time}{' (open)' if r.is_open else ''}</td><td>{r.exit_price:g}</td><td>{r.pnl:,.2f}</td>"
        f"<td>{r.return_pct:.2f}%</td></tr>" for r in trades.head(500).itertuples())
    more = f"<p>… and {len(trades) - 500} more in the trades table.</p>" if len(trades) > 500 else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(run['run_id'])}</title>
<style>body{{font-family:sans-serif;margin:24px}} table{{border-collapse:collapse;font-size:13px}}
th,td{{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}} .row{{display:flex;gap:40px}}</style></head>
<body><h1>{html.escape(run['strategy'])} on {html.escape(run['symbol'])} ({html.escape(run['timeframe'])})</h1>
<div class="row"><table>{about}</table><table>{metrics}</table></div>
{price.svg("Price (close) with trades: ▲ long entry, ▼ short entry, × exit", times)}
{equity_chart.svg("Equity", times)}
{dd_chart.svg("Drawdown", times, percent=True)}
<h2>Trades</h2><table><tr><th>#</th><th>units</th><th>entry</th><th>price</th><th>exit</th><th>price</th>
<th>P&amp;L</th><th>return</th></tr>{rows}</table>{more}</body></html>"""


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:,.4f}" if isinstance(value, float) else str(value)
