"""The execution model: target positions in, fills, cash, positions, equity and trades out.

A strategy's target for bar ``i`` is decided on bar ``i``'s close and filled at bar ``i + 1``'s
open (backtesting.py's default, ``trade_on_close=False``); a target set on the last bar is never
filled. When the target changes, the open position is closed and, unless the new target is 0,
a new one is opened with ``|target|`` of the equity (all-in at 1), in whole units by default
(backtesting.py's sizing). Commission is a fraction of each fill's traded value, slippage moves
each fill's price against the trader. Everything per bar is numpy; the one loop runs over fills.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numba import njit


@dataclass(frozen=True)
class Execution:
    cash: float = 10_000.0
    commission: float = 0.0  # fraction of traded value, charged on every fill
    slippage: float = 0.0  # fraction of the price, against the trader, on every fill
    allow_short: bool = True  # False: negative targets mean flat
    whole_units: bool = True  # False: fractional units (e.g. crypto)

    def __post_init__(self) -> None:
        if not self.cash > 0:
            raise ValueError(f"cash must be positive, not {self.cash}")
        if not 0 <= self.commission < 0.1:
            raise ValueError(f"commission is a fraction of traded value in [0, 0.1), not {self.commission}")
        if not 0 <= self.slippage < 0.1:
            raise ValueError(f"slippage is a fraction of the price in [0, 0.1), not {self.slippage}")


@dataclass(frozen=True)
class Trades:
    """One row per round trip, in entry order; the last one may still be open at the end of the data."""

    entry_bar: np.ndarray  # int: the bar whose open filled the entry
    exit_bar: np.ndarray  # int: the bar whose open filled the exit (the last bar if still open)
    units: np.ndarray  # signed: positive long, negative short
    entry_price: np.ndarray
    exit_price: np.ndarray  # the last close if still open
    commission: np.ndarray  # entry plus exit commission
    pnl: np.ndarray  # net of commission
    is_open: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.entry_bar)

    @property
    def closed_pnl(self) -> np.ndarray:
        return self.pnl[~self.is_open]


@dataclass(frozen=True)
class Simulation:
    units: np.ndarray  # position held over each bar (after that bar's open fill)
    cash: np.ndarray  # realised cash after each bar's open fill
    equity: np.ndarray  # cash plus open position marked to each bar's close
    trades: Trades


def hold(values: np.ndarray) -> np.ndarray:
    """NaN replaced by the latest value before it, 0 before the first."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    if valid.all():
        return values
    last = np.maximum.accumulate(np.where(valid, np.arange(len(values)), -1))
    return np.where(last >= 0, values[np.maximum(last, 0)], 0.0)


def clean_target(target: np.ndarray, allow_short: bool) -> np.ndarray:
    """Targets as the engine uses them: NaN holds the previous target (0 at the start),
    clipped to [-1, 1], or to [0, 1] when shorting is not allowed."""
    return np.clip(hold(target), -1.0 if allow_short else 0.0, 1.0)


def _fill_loop(fill_bars, targets, open_, last_close, cash0, commission, slippage, whole_units):
    """Walk the fills in order. Returns the state after each fill (cash, units, entry price)
    and the round trips. Kept to plain scalars and arrays so numba can compile it."""
    m = len(fill_bars)
    cash_after, units_after, entry_after = np.empty(m), np.empty(m), np.empty(m)
    t_entry_bar = np.empty(m, np.int64)
    t_exit_bar = np.empty(m, np.int64)
    t_units, t_entry, t_exit = np.empty(m), np.empty(m), np.empty(m)
    t_comm, t_pnl = np.empty(m), np.empty(m)
    t_open = np.zeros(m, np.bool_)
    cash, units, entry_price, entry_comm, entry_bar, n = cash0, 0.0, 0.0, 0.0, 0, 0
    for k in range(m):
        bar, price = fill_bars[k], open_[fill_bars[k]]
        if units != 0.0:
            exit_price = price * (1.0 - slippage) if units > 0 else price * (1.0 + slippage)
            exit_comm = abs(units) * exit_price * commission
            gross = units * (exit_price - entry_price)
            cash += gross - exit_comm
            t_entry_bar[n], t_exit_bar[n], t_units[n] = entry_bar, bar, units
            t_entry[n], t_exit[n] = entry_price, exit_price
            t_comm[n], t_pnl[n] = entry_comm + exit_comm, gross - entry_comm - exit_comm
            n += 1
            units = 0.0
        target = targets[k]
        if target != 0.0 and cash > 0.0:
            side = 1.0 if target > 0 else -1.0
            fill = price * (1.0 + side * slippage)
            size = abs(target) * cash / (fill * (1.0 + commission))
            if whole_units:
                size = np.floor(size)
            if size > 0.0:
                units, entry_price, entry_bar = side * size, fill, bar
                entry_comm = size * fill * commission
                cash -= entry_comm
        cash_after[k], units_after[k], entry_after[k] = cash, units, entry_price
    if units != 0.0:  # still open: marked to the last close, no exit commission
        t_entry_bar[n], t_exit_bar[n], t_units[n] = entry_bar, len(open_) - 1, units
        t_entry[n], t_exit[n] = entry_price, last_close
        t_comm[n], t_pnl[n] = entry_comm, units * (last_close - entry_price) - entry_comm
        t_open[n] = True
        n += 1
    trades = (t_entry_bar[:n], t_exit_bar[:n], t_units[:n], t_entry[:n], t_exit[:n], t_comm[:n], t_pnl[:n],
              t_open[:n])
    return cash_after, units_after, entry_after, trades


_fills = njit(cache=True, nogil=True)(_fill_loop)


def simulate(open_: np.ndarray, close: np.ndarray, target: np.ndarray, execution: Execution) -> Simulation:
    """Run the execution model over one symbol's bars (arrays of equal length, oldest first)."""
    open_ = np.ascontiguousarray(open_, dtype=np.float64)
    close = np.ascontiguousarray(close, dtype=np.float64)
    n = len(close)
    target = clean_target(target, execution.allow_short)
    decided = np.flatnonzero(np.diff(target[:-1], prepend=0.0)) if n > 1 else np.empty(0, np.int64)
    fill_bars = decided + 1
    cash_after, units_after, entry_after, trades = _fills(
        fill_bars, target[decided], open_, close[-1] if n else 0.0, float(execution.cash),
        float(execution.commission), float(execution.slippage), bool(execution.whole_units))
    # State over each bar: the state after the latest fill at or before it.
    counts = np.diff(np.concatenate(([0], fill_bars, [n])))
    cash = np.repeat(np.concatenate(([execution.cash], cash_after)), counts)
    units = np.repeat(np.concatenate(([0.0], units_after)), counts)
    entry = np.repeat(np.concatenate(([0.0], entry_after)), counts)
    equity = cash + units * (close - entry)
    return Simulation(units=units, cash=cash, equity=equity, trades=Trades(*trades))
