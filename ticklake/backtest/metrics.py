"""Performance metrics of one run; definitions in docs/BACKTESTS.md.

Return-based ratios use daily returns: the equity at the last bar of each UTC day that has
bars, against the previous such day (the first against the starting cash), annualised with
the asset's calendar (252 trading days, or 365 for assets that trade every day).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit, types

from ticklake.backtest.engine import ARRAY, Simulation

METRICS = ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar",
           "trades", "win_rate", "profit_factor", "exposure")
YEAR_SECONDS = 365.25 * 24 * 3600
CAGR_MIN_DAYS = 30  # a shorter span would annualise a few days' return into an absurd growth rate


def day_ends(times: pd.DatetimeIndex) -> np.ndarray:
    """Positions of the last bar of each UTC day in ``times`` (sorted)."""
    days = times.tz_convert("UTC").normalize() if times.tz is not None else times.normalize()
    day_values = days.asi8
    return np.flatnonzero(np.append(day_values[1:] != day_values[:-1], True))


def periods_per_year(symbol: str, every_day_prefixes: list[str], trading_days: int) -> int:
    """365 for symbols that trade every day (their exchange prefix is listed), else ``trading_days``."""
    return 365 if any(symbol.startswith(prefix) for prefix in every_day_prefixes) else trading_days


def drawdown(equity: np.ndarray, cash: float) -> np.ndarray:
    """Fall from the running peak (the starting cash counts as one), as a positive fraction of it."""
    return 1.0 - equity / np.maximum(np.maximum.accumulate(equity), cash)


@njit((ARRAY, types.float64), cache=True, nogil=True)
def max_drawdown(equity: np.ndarray, cash: float) -> float:
    """The largest value of :func:`drawdown` (0 when equity never falls below a peak), in one pass."""
    peak, worst = cash, 0.0
    for value in equity:
        peak = max(peak, value)
        worst = max(worst, 1.0 - value / peak)
    return worst


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def compute(sim: Simulation, cash: float, day_end: np.ndarray, years: float, annual: int) -> dict[str, float]:
    """The metrics of a simulation. ``day_end`` from :func:`day_ends`; ``years`` is the data's
    span (first bar start to last bar end) in years of 365.25 days (CAGR and Calmar are NaN below
    CAGR_MIN_DAYS); ``annual`` from :func:`periods_per_year`."""
    equity = sim.equity
    final = float(equity[-1])
    daily = np.diff(np.concatenate(([cash], equity[day_end]))) / np.concatenate(([cash], equity[day_end][:-1]))
    mean = daily.mean()
    std = daily.std(ddof=1) if len(daily) > 1 else float("nan")
    downside = np.sqrt(np.mean(np.minimum(daily, 0.0) ** 2))
    total = final / cash - 1.0
    long_enough = years * 365.25 >= CAGR_MIN_DAYS
    cagr = (final / cash) ** (1.0 / years) - 1.0 if long_enough and final > 0 else float("nan")
    max_dd = max_drawdown(equity, cash)
    pnl = sim.trades.closed_pnl
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    return {
        "total_return": total,
        "cagr": cagr,
        "volatility": std * np.sqrt(annual),
        "sharpe": _ratio(mean, std) * np.sqrt(annual),
        "sortino": _ratio(mean, downside) * np.sqrt(annual),
        "max_drawdown": max_dd,
        "calmar": _ratio(cagr, max_dd),
        "trades": float(len(pnl)),
        "win_rate": _ratio(float((pnl > 0).sum()), float(len(pnl))),
        "profit_factor": _ratio(gains, losses),
        "exposure": float(np.mean(sim.units != 0)),
    }
