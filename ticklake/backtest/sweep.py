"""Parameter sweeps over one symbol: prepare its bars once, then evaluate every parameter set."""
from __future__ import annotations

import ctypes
import functools
import itertools
import math
import random
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ticklake.backtest import metrics, strategies
from ticklake.backtest.engine import Execution, Simulation, simulate
from ticklake.backtest.resample import resample
from ticklake.timeframes import pandas_frequency


def grid(values: dict[str, list]) -> list[dict]:
    """Every combination of the values, the last parameter varying fastest."""
    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*(values[n] for n in names))]


def sample(param_sets: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` parameter sets drawn without replacement (all when there are fewer), in grid order."""
    if n >= len(param_sets):
        return param_sets
    return [param_sets[i] for i in sorted(random.Random(seed).sample(range(len(param_sets)), n))]


def plan(symbols: list[str], sets: int, tasks: int, chunks: int | None = None) -> list[dict[str, list[int]]]:
    """The work of each task: symbol -> indices of its parameter sets. Each symbol's sets are cut
    into ``chunks`` (chunk *c* takes sets *c*, *c + k*, ...; by default just enough for every task to
    get the same number of chunks) and the chunks, symbol by symbol, are dealt to the tasks in
    contiguous runs, so that a task holds as few symbols as it can."""
    chunks = min(sets, chunks or tasks // math.gcd(len(symbols), tasks))
    units = [(symbol, c) for symbol in symbols for c in range(chunks)]
    tasks = min(tasks, len(units))
    work: list[dict[str, list[int]]] = [{} for _ in range(tasks)]
    for t in range(tasks):
        for symbol, c in units[t * len(units) // tasks:(t + 1) * len(units) // tasks]:
            work[t].setdefault(symbol, []).extend(range(c, sets, chunks))
    return [{symbol: sorted(indices) for symbol, indices in task.items()} for task in work]


@dataclass(frozen=True)
class SymbolBars:
    """One symbol's bars at the backtest timeframe, with what the metrics need of its calendar."""

    symbol: str
    bars: pd.DataFrame
    day_end: np.ndarray
    years: float
    annual: int


def prepare(symbol: str, raw: pd.DataFrame, timeframe: str, every_day_prefixes: list[str],
            trading_days: int) -> SymbolBars:
    bars = resample(raw, timeframe)
    span = bars.index[-1] + pd.Timedelta(pandas_frequency(timeframe)) - bars.index[0] if len(bars) else pd.Timedelta(0)
    return SymbolBars(symbol, bars, metrics.day_ends(bars.index), span.total_seconds() / metrics.YEAR_SECONDS,
                      metrics.periods_per_year(symbol, every_day_prefixes, trading_days))


def run(data: SymbolBars, strategy: strategies.Strategy, params: dict, execution: Execution
        ) -> tuple[Simulation, dict[str, float]]:
    """One parameter set: the simulation and its metrics (plus ``final_equity``)."""
    target = strategies.target_positions(strategy, data.bars, params)
    sim = simulate(data.bars["open"].to_numpy(), data.bars["close"].to_numpy(), target, execution)
    result = metrics.compute(sim, execution.cash, data.day_end, data.years, data.annual)
    result["final_equity"] = float(sim.equity[-1])
    return sim, result


@functools.cache
def keep_freed_memory() -> None:
    """Tell glibc to keep freed memory for the next allocation: by default it hands arrays above
    128 KiB back to the kernel when they are freed and page-faults them in again when the next run
    allocates the same arrays, which in a fresh process costs as much as the runs themselves.
    Process-wide; nothing happens without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: the heap serves allocations up to 32 MiB
    libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: and keeps up to 1 GiB free at its top


def evaluate(data: SymbolBars, strategy: strategies.Strategy, param_sets: list[dict], execution: Execution
             ) -> list[dict[str, float]]:
    """The metrics of each parameter set, in order."""
    keep_freed_memory()
    return [run(data, strategy, params, execution)[1] for params in param_sets]
