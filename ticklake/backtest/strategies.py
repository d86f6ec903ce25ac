"""Strategies: plain functions ``f(bars, **params) -> target positions``.

``bars`` is one symbol's bars at the backtest's timeframe, oldest first, indexed by the bar's
start time (UTC) with columns open, high, low, close, volume, trade_count, vwap. The result
is a ``pd.Series`` or numpy array of the same length: the position wanted from the next bar's open
on, as a fraction of equity in [-1, 1] (1 all-in long, -1 all-in short, 0 flat); NaN keeps the
previous target. Only past and current bars may be used (no look-ahead): the engine fills the
target of bar ``i`` at bar ``i + 1``'s open. Built-ins are below; any importable function with
this contract is loaded by ``pkg.module:func`` (docs/BACKTESTS.md).
"""
from __future__ import annotations

import importlib
import inspect
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import pandas as pd

from ticklake.backtest.engine import hold
from ticklake.errors import UserError

Strategy = Callable[..., "pd.Series | np.ndarray"]


_MEMO: OrderedDict[tuple, tuple[pd.DataFrame, np.ndarray]] = OrderedDict()
_MEMO_SIZE = 256


def indicator(bars: pd.DataFrame, name: str, arg: object, compute: Callable[[], pd.Series]) -> np.ndarray:
    """``compute()`` as a read-only array, remembered for this very ``bars`` frame: a sweep calls a
    strategy many times on the same frame, and each window is computed once. Strategies treat
    ``bars`` as read-only, so the remembered values stay right."""
    key = (id(bars), name, arg)
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is bars:
        _MEMO.move_to_end(key)
        return hit[1]
    values = np.asarray(compute(), dtype=np.float64)
    values.flags.writeable = False
    _MEMO[key] = (bars, values)  # holding the frame keeps its id from being reused
    if len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return values


def sma(bars: pd.DataFrame, window: int) -> np.ndarray:
    """Simple moving average of the close over ``window`` bars (NaN until there are enough)."""
    return indicator(bars, "sma", window, lambda: bars["close"].rolling(window).mean())


def rolling_std(bars: pd.DataFrame, window: int) -> np.ndarray:
    """Population standard deviation of the close over ``window`` bars."""
    return indicator(bars, "std", window, lambda: bars["close"].rolling(window).std(ddof=0))


def wilder_average(values: pd.Series, period: int) -> pd.Series:
    """Wilder's smoothing: the mean of the first ``period`` values, then
    ``previous + (value - previous) / period``; NaN before. ``values`` starts with one NaN (a diff)."""
    seeded = values.iloc[period:].copy()
    if seeded.empty:
        return pd.Series(np.nan, index=values.index)
    seeded.iloc[0] = values.iloc[1:period + 1].mean()
    return seeded.ewm(alpha=1 / period, adjust=False).mean().reindex(values.index)


def rsi(bars: pd.DataFrame, period: int) -> np.ndarray:
    """Wilder's relative strength index of the close, 0..100 (first value after ``period`` changes)."""
    def compute() -> pd.Series:
        change = bars["close"].diff()
        gain, loss = wilder_average(change.clip(lower=0), period), wilder_average((-change).clip(lower=0), period)
        return 100 - 100 / (1 + gain / loss)
    return indicator(bars, "rsi", period, compute)


def _events(up: np.ndarray, down: np.ndarray) -> np.ndarray:
    """+1 on ``up`` bars, -1 on ``down`` bars, NaN (hold) elsewhere."""
    return np.where(up, 1.0, np.where(down, -1.0, np.nan))


def sma_crossover(bars: pd.DataFrame, fast: int = 10, slow: int = 20) -> np.ndarray:
    """Long when the fast simple moving average of the close crosses above the slow one, short
    when it crosses below (flat instead when shorting is off). A cross needs the fast average
    strictly below (above) the slow one on the previous bar, as backtesting.py's ``crossover``."""
    diff = sma(bars, fast) - sma(bars, slow)
    before = np.concatenate(([np.nan], diff[:-1]))
    return _events((before < 0) & (diff > 0), (before > 0) & (diff < 0))


def rsi_reversion(bars: pd.DataFrame, period: int = 14, lower: float = 30.0, upper: float = 70.0) -> np.ndarray:
    """Mean reversion: long when the RSI closes below ``lower``, short when above ``upper``
    (long-only: flat when above ``upper``), held in between."""
    value = rsi(bars, period)
    return _events(value < lower, value > upper)


def bollinger_breakout(bars: pd.DataFrame, window: int = 20, k: float = 2.0) -> np.ndarray:
    """Breakout: long when the close ends above the upper band (mean + k population standard
    deviations of the last ``window`` closes), short below the lower band; the position is closed
    on the first close on the other side of the mean, and waits for the next breakout."""
    close = bars["close"].to_numpy()
    mean, spread = sma(bars, window), k * rolling_std(bars, window)
    up, down = close > mean + spread, close < mean - spread
    breakout = hold(_events(up, down))
    # Exits: bars whose close is back across the mean, counted since the latest breakout.
    against = ((breakout > 0) & (close < mean)) | ((breakout < 0) & (close > mean))
    exits = np.cumsum(against)
    since = np.maximum.accumulate(np.where(up | down, np.arange(len(close)), 0))
    exited = exits - exits[since] > 0
    return np.where(exited, 0.0, breakout)


def _check_sma(p: dict) -> str | None:
    if p["fast"] < 1 or p["slow"] < 1:
        return "fast and slow are windows of at least 1 bar"
    return "fast must be smaller than slow" if p["fast"] >= p["slow"] else None


def _check_rsi(p: dict) -> str | None:
    if p["period"] < 2:
        return "period must be at least 2 bars"
    return None if 0 < p["lower"] < p["upper"] < 100 else "need 0 < lower < upper < 100"


def _check_bollinger(p: dict) -> str | None:
    if p["window"] < 2:
        return "window must be at least 2 bars"
    return None if p["k"] > 0 else "k must be positive"


BUILT_IN: dict[str, tuple[Strategy, Callable[[dict], str | None]]] = {
    "sma_crossover": (sma_crossover, _check_sma),
    "rsi_reversion": (rsi_reversion, _check_rsi),
    "bollinger_breakout": (bollinger_breakout, _check_bollinger),
}


def load(name: str) -> Strategy:
    """A built-in strategy by name, or a user's function by ``pkg.module:func``."""
    if name in BUILT_IN:
        return BUILT_IN[name][0]
    if ":" not in name:
        raise UserError(f"unknown strategy {name!r}: use one of {', '.join(BUILT_IN)} "
                        "or a function of yours as pkg.module:func")
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"strategy {name!r}: cannot import {module_name!r} ({error}); "
                        "is it on PYTHONPATH (or installed) for the driver and the executors?") from error
    func = getattr(module, attr, None)
    if not callable(func):
        raise UserError(f"strategy {name!r}: {module_name} has no function {attr!r}")
    return func


def parameters(func: Strategy) -> dict[str, inspect.Parameter]:
    """The strategy's parameters after ``bars``."""
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY,
                                            inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise UserError(f"strategy {func.__name__} must take the bars as its first argument")
    return {p.name: p for p in params[1:]}


def validate(name: str, params: dict[str, object]) -> dict[str, object]:
    """The full parameter set (defaults filled in, values coerced to the defaults' types);
    a ``UserError`` saying what is wrong otherwise."""
    func = load(name)
    declared = parameters(func)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise UserError(f"strategy {name} has no parameter {', '.join(unknown)}; "
                        f"its parameters: {', '.join(declared) or 'none'}")
    full: dict[str, object] = {}
    for pname, param in declared.items():
        if pname not in params and param.default is inspect.Parameter.empty:
            raise UserError(f"strategy {name} needs a value for parameter {pname}")
        value = params.get(pname, param.default)
        full[pname] = _coerce(name, pname, value, param.default)
    if name in BUILT_IN:
        problem = BUILT_IN[name][1](full)
        if problem:
            raise UserError(f"strategy {name}: invalid parameters {full}: {problem}")
    return full


def _coerce(strategy: str, name: str, value: object, default: object) -> object:
    kind = type(default) if default is not inspect.Parameter.empty and default is not None else None
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is not None and not isinstance(value, kind):
        raise UserError(f"strategy {strategy}: parameter {name} must be a {kind.__name__}, not {value!r}")
    return value


def target_positions(func: Strategy, bars: pd.DataFrame, params: dict[str, object]) -> np.ndarray:
    """Call a strategy and check what it returned against the contract."""
    result = func(bars, **params)
    values = np.asarray(result.to_numpy() if isinstance(result, pd.Series) else result, dtype=np.float64)
    if values.shape != (len(bars),):
        raise ValueError(f"strategy {getattr(func, '__name__', func)} returned shape {values.shape} "
                         f"for {len(bars)} bars; it must return one target per bar")
    if (np.abs(values) > 1).any():  # infinities too; NaN (hold) compares false
        raise ValueError(f"strategy {getattr(func, '__name__', func)} returned targets outside [-1, 1]")
    return values
