"""The execution model: target positions in, fills, cash, positions, equity and trades out.

A strategy's target for bar ``i`` is decided on bar ``i``'s close and filled at bar ``i + 1``'s
open (backtesting.py's default, ``trade_on_close=False``); a target set on the last bar is never
filled. When the target changes, the open position is closed and, unless the new target is 0,
a new one is opened with ``|target|`` of the equity (all-in at 1), in whole units by default
(backtesting.py's sizing). Commission is a fraction of each fill's traded value, slippage moves
each fill's price against the trader. The walk over the bars is one loop, compiled with numba.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numba import njit, types


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


def _clean(target, low):
    out, held = np.empty(len(target)), 0.0
    for i in range(len(target)):
        if not np.isnan(target[i]):
            held = min(max(target[i], low), 1.0)
        out[i] = held
    return out


# Compiled (or loaded from numba's cache) at import, for read-only float arrays (pandas gives those).
ARRAY = types.Array(types.float64, 1, "A", readonly=True)
_clean_compiled = njit((ARRAY, types.float64), cache=True, nogil=True)(_clean)


def clean_target(target: np.ndarray, allow_short: bool) -> np.ndarray:
    """Targets as the engine uses them: NaN holds the previous target (0 at the start),
    clipped to [-1, 1], or to [0, 1] when shorting is not allowed."""
    return _clean_compiled(np.ascontiguousarray(target, dtype=np.float64), -1.0 if allow_short else 0.0)


def _walk(target, open_, close, cash0, commission, slippage, whole_units):
    """One pass over the bars with clean targets: the target of bar ``i`` (when it differs from bar
    ``i - 1``'s, 0 before the first) is filled at bar ``i + 1``'s open. Returns the state over each bar
    (units, cash, equity) and the round trips. Kept to plain scalars and arrays so numba can compile it."""
    n = len(close)
    changes = 0
    for i in range(n - 1):
        if target[i] != (target[i - 1] if i > 0 else 0.0):
            changes += 1
    m = changes + 1  # a round trip closes at each fill, and one may be open at the end
    units_bar, cash_bar, equity = np.empty(n), np.empty(n), np.empty(n)
    t_entry_bar = np.empty(m, np.int64)
    t_exit_bar = np.empty(m, np.int64)
    t_units, t_entry, t_exit = np.empty(m), np.empty(m), np.empty(m)
    t_comm, t_pnl = np.empty(m), np.empty(m)
    t_open = np.zeros(m, np.bool_)
    cash, units, entry_price, entry_comm, entry_bar, k = cash0, 0.0, 0.0, 0.0, 0, 0
    for bar in range(n):
        if bar > 0 and target[bar - 1] != (target[bar - 2] if bar > 1 else 0.0):
            price = open_[bar]
            if units != 0.0:
                exit_price = price * (1.0 - slippage) if units > 0 else price * (1.0 + slippage)
                exit_comm = abs(units) * exit_price * commission
                gross = units * (exit_price - entry_price)
                cash += gross - exit_comm
                t_entry_bar[k], t_exit_bar[k], t_units[k] = entry_bar, bar, units
                t_entry[k], t_exit[k] = entry_price, exit_price
                t_comm[k], t_pnl[k] = entry_comm + exit_comm, gross - entry_comm - exit_comm
                k += 1
                units = 0.0
            wanted = target[bar - 1]
            if wanted != 0.0 and cash > 0.0:
                side = 1.0 if wanted > 0 else -1.0
                fill = price * (1.0 + side * slippage)
                size = abs(wanted) * cash / (fill * (1.0 + commission))
                if whole_units:
                    size = np.floor(size)
                if size > 0.0:
                    units, entry_price, entry_bar = side * size, fill, bar
                    entry_comm = size * fill * commission
                    cash -= entry_comm
        units_bar[bar], cash_bar[bar] = units, cash
        equity[bar] = cash + units * (close[bar] - entry_price)
    if units != 0.0:  # still open: marked to the last close, no exit commission
        t_entry_bar[k], t_exit_bar[k], t_units[k] = entry_bar, n - 1, units
        t_entry[k], t_exit[k] = entry_price, close[n - 1]
        t_comm[k], t_pnl[k] = entry_comm, units * (close[n - 1] - entry_price) - entry_comm
        t_open[k] = True
        k += 1
    trades = (t_entry_bar[:k], t_exit_bar[:k], t_units[:k], t_entry[:k], t_exit[:k], t_comm[:k], t_pnl[:k],
              t_open[:k])
    return units_bar, cash_bar, equity, trades


_walk_compiled = njit((ARRAY,) * 3 + (types.float64,) * 3 + (types.boolean,), cache=True, nogil=True)(_walk)


def simulate(open_: np.ndarray, close: np.ndarray, target: np.ndarray, execution: Execution) -> Simulation:
    """Run the execution model over one symbol's bars (arrays of equal length, oldest first)."""
    units, cash, equity, trades = _walk_compiled(
        clean_target(target, execution.allow_short), np.ascontiguousarray(open_, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64), float(execution.cash), float(execution.commission),
        float(execution.slippage), bool(execution.whole_units))
    return Simulation(units=units, cash=cash, equity=equity, trades=Trades(*trades))
