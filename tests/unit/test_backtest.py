"""The backtest's pure parts, against hand-computed cases: resampling, strategies, the engine's
accounting, metrics, user strategies and the request's options."""
from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from ticklake.backtest import engine, metrics, request, resample, strategies, sweep
from ticklake.backtest.engine import Execution, Simulation, Trades, simulate
from ticklake.errors import UserError

OPEN = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
CLOSE = np.array([10.5, 11.5, 12.5, 13.5, 14.5])


def frame(close, open_=None) -> pd.DataFrame:
    close = np.asarray(close, dtype=float)
    index = pd.date_range("2025-01-01", periods=len(close), freq="1min", tz="UTC")
    return pd.DataFrame({"open": close if open_ is None else open_, "high": close, "low": close, "close": close},
                        index=index)


# resample -------------------------------------------------------------------------------------

def minute_bars() -> pd.DataFrame:
    times = pd.to_datetime(["2025-01-01 10:00", "2025-01-01 10:01", "2025-01-01 10:07", "2025-01-01 10:04"],
                           utc=True)
    return pd.DataFrame({"window_start": times, "open": [1.0, 2, 3, 4], "high": [2.0, 3, 4, 5],
                         "low": [0.5, 1, 2, 3], "close": [1.5, 2.5, 3.5, 4.5], "volume": [1.0, 0, 2, 1],
                         "trade_count": [1, 1, 2, 1], "vwap": [1.2, None, 3.3, 4.1]})


def test_resample_aggregates_ohlcv_in_time_order_and_keeps_gaps():
    out = resample.resample(minute_bars(), "5m")
    assert list(out.index) == list(pd.to_datetime(["2025-01-01 10:00", "2025-01-01 10:05"], utc=True))
    first = out.iloc[0]
    assert (first.open, first.high, first.low, first.close) == (1.0, 5.0, 0.5, 4.5)  # 10:04 is the last bar
    assert (first.volume, first.trade_count) == (2.0, 3)
    assert first.vwap == pytest.approx((1.2 * 1 + 4.1 * 1) / 2)  # the zero-volume bar has no weight
    one_minute = resample.resample(minute_bars(), "1m")
    assert len(one_minute) == 4  # 10:02, 10:03, 10:05, 10:06 had no trade: no bar, not a zero price
    assert math.isnan(one_minute.loc["2025-01-01 10:01"].vwap)


def test_resample_daily_uses_utc_days_and_rejects_unknown_timeframes():
    out = resample.resample(minute_bars(), "1d")
    assert len(out) == 1 and out.index[0] == pd.Timestamp("2025-01-01", tz="UTC")
    assert resample.resample(minute_bars().iloc[:0], "1h").empty
    with pytest.raises(ValueError, match="unknown timeframe"):
        resample.resample(minute_bars(), "2m")


# strategies -----------------------------------------------------------------------------------

def test_sma_crossover_trades_only_on_strict_crosses():
    bars = frame([5, 4, 3, 2, 1, 2, 3, 4, 5, 4, 3, 2, 1])
    # close - SMA(3): -1 -1 -1 | +1/3 (cross up at 5) 1 1 1 | -1/3 (cross down at 9) -1 ...
    target = engine.hold(strategies.sma_crossover(bars, fast=1, slow=3))
    assert list(target) == [0, 0, 0, 0, 0, 1, 1, 1, 1, -1, -1, -1, -1]


def test_rsi_is_wilders_and_reversion_goes_against_extremes():
    close = np.array([10, 11, 12, 11, 12, 13, 14, 13, 12, 11, 10, 9, 8, 9], dtype=float)
    value = strategies.rsi(frame(close), 3)
    change = np.diff(close)
    gain, loss = np.clip(change, 0, None)[:3].mean(), np.clip(-change, 0, None)[:3].mean()
    assert np.isnan(value[:3]).all() and value[3] == pytest.approx(100 - 100 / (1 + gain / loss))
    gain, loss = (gain * 2 + max(change[3], 0)) / 3, (loss * 2 + max(-change[3], 0)) / 3
    assert value[4] == pytest.approx(100 - 100 / (1 + gain / loss))
    target = strategies.rsi_reversion(frame(close), period=3, lower=30, upper=70)
    assert np.array_equal(np.isnan(target), ~((value < 30) | (value > 70)))
    assert set(target[value > 70]) == {-1.0} and set(target[value < 30]) == {1.0}


def test_bollinger_breakout_enters_on_the_band_and_exits_at_the_mean():
    # bar 5 closes above the band of the last 5 closes (mean 10.6, sd 1.2): long; bar 6 above
    # the mean 10.9: held; bar 7 at 10.5 under the mean 11.0 but above the lower band 9.86: flat
    long = strategies.bollinger_breakout(frame([10.0] * 5 + [13.0, 11.5, 10.5]), window=5, k=1.0)
    assert list(long[4:]) == [0.0, 1.0, 1.0, 0.0]
    # bar 7 at 9 under the lower band (mean 11.2, sd 1.94): short; bar 8 under the mean: held;
    # bar 9 at 12 over the mean 11.6: flat
    short = strategies.bollinger_breakout(frame([10.0] * 5 + [13.0, 14.0, 9.0, 10.0, 12.0]), window=5, k=1.0)
    assert list(short[4:]) == [0.0, 1.0, 1.0, -1.0, -1.0, 0.0]


def test_indicators_are_computed_once_per_frame():
    bars, calls = frame(np.arange(30.0)), []
    for _ in range(3):
        strategies.indicator(bars, "x", 1, lambda: calls.append(1) or bars["close"])
    assert len(calls) == 1
    assert not strategies.sma(bars, 5).flags.writeable


# engine ---------------------------------------------------------------------------------------

def test_long_round_trip_with_commission_hand_computed():
    sim = simulate(OPEN, CLOSE, np.array([1, 1, 0, 0, 0.0]), Execution(cash=100, commission=0.01))
    # decided on bar 0's close, filled at bar 1's open: floor(100 / (11 * 1.01)) = 9 units, commission 0.99
    # exit decided on bar 2, filled at bar 3's open 13: +18 gross, commission 1.17
    assert list(sim.units) == [0, 9, 9, 0, 0]
    np.testing.assert_allclose(sim.equity, [100, 99.01 + 4.5, 99.01 + 13.5, 115.84, 115.84])
    t = sim.trades
    assert (list(t.entry_bar), list(t.exit_bar), list(t.is_open)) == ([1], [3], [False])
    np.testing.assert_allclose([t.entry_price[0], t.exit_price[0], t.commission[0], t.pnl[0]],
                               [11, 13, 2.16, 15.84])


def test_short_with_slippage_and_long_only_and_fractional_units():
    target = np.array([-1, -1, 0, 0, 0.0])
    sim = simulate(OPEN, CLOSE, target, Execution(cash=100, slippage=0.01))
    # sells at 11 * 0.99 = 10.89: 9 units; buys back at 13 * 1.01 = 13.13
    assert sim.trades.units[0] == -9
    np.testing.assert_allclose(sim.trades.pnl, [-9 * (13.13 - 10.89)])
    assert simulate(OPEN, CLOSE, target, Execution(cash=100, allow_short=False)).trades.units.size == 0
    fractional = simulate(OPEN, CLOSE, -target, Execution(cash=100, whole_units=False))
    assert fractional.trades.units[0] == pytest.approx(100 / 11)
    assert fractional.equity[-1] == pytest.approx(100 / 11 * 13)


def test_reversal_sizes_from_cash_after_closing_and_last_signal_is_not_filled():
    sim = simulate(OPEN, CLOSE, np.array([1, -1, -1, 1, -1.0]), Execution(cash=100))
    # 9 long at 11, out at 12 (+9), short floor(109 / 12) = 9 at 12, out at 14 (-18),
    # long floor(91 / 14) = 6 at 14 still open; bar 4's -1 has no next bar
    assert list(sim.trades.units) == [9, -9, 6]
    assert list(sim.trades.is_open) == [False, False, True]
    np.testing.assert_allclose(sim.trades.pnl, [9, -18, 6 * (14.5 - 14)])
    assert sim.equity[-1] == pytest.approx(91 + 3)


def test_nan_holds_the_previous_target_and_too_little_cash_buys_nothing():
    assert list(engine.clean_target(np.array([np.nan, 1, np.nan, -1, np.nan]), True)) == [0, 1, 1, -1, -1]
    assert list(engine.clean_target(np.array([0.5, -2.0]), False)) == [0.5, 0.0]
    poor = simulate(OPEN, CLOSE, np.ones(5), Execution(cash=5))
    assert len(poor.trades) == 0 and (poor.equity == 5).all()


@pytest.mark.parametrize("kwargs", [{"cash": 0}, {"commission": -0.1}, {"slippage": 0.5}])
def test_execution_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        Execution(**kwargs)


# metrics --------------------------------------------------------------------------------------

def hand_simulation() -> Simulation:
    pnl = np.array([10.0, -5.0, 20.0, 1.0])
    trades = Trades(*(np.zeros(4, int),) * 2, np.ones(4), *(np.ones(4),) * 3, pnl,
                    np.array([False, False, False, True]))
    return Simulation(units=np.array([0, 1, 1, 0.0]), cash=np.zeros(4), equity=np.array([100, 110, 99, 121.0]),
                      trades=trades)


def test_metrics_hand_computed():
    m = metrics.compute(hand_simulation(), 100.0, day_end=np.arange(4), years=0.5, annual=252)
    daily = [0.0, 0.1, -0.1, 22 / 99]
    mean, std = statistics.mean(daily), statistics.stdev(daily)
    assert m["total_return"] == pytest.approx(0.21)
    assert m["cagr"] == pytest.approx(1.21 ** 2 - 1)
    assert m["volatility"] == pytest.approx(std * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    assert m["sortino"] == pytest.approx(mean / math.sqrt(0.01 / 4) * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(1 - 99 / 110)
    assert m["calmar"] == pytest.approx((1.21 ** 2 - 1) / (1 - 99 / 110))
    assert (m["trades"], m["win_rate"], m["profit_factor"]) == (3, pytest.approx(2 / 3), pytest.approx(6.0))
    assert m["exposure"] == 0.5


def test_daily_returns_use_each_days_last_bar_and_the_calendar():
    times = pd.DatetimeIndex(pd.to_datetime(["2025-01-01 10:00", "2025-01-01 15:00", "2025-01-02 09:00"], utc=True))
    assert list(metrics.day_ends(times)) == [1, 2]
    assert metrics.periods_per_year("BINANCE:BTCUSDT", ["BINANCE:"], 252) == 365
    assert metrics.periods_per_year("AAPL", ["BINANCE:"], 252) == 252


def test_cagr_and_calmar_are_nan_for_spans_shorter_than_the_minimum():
    days = lambda n: n / 365.25  # noqa: E731
    short = metrics.compute(hand_simulation(), 100.0, day_end=np.arange(4), years=days(29.9), annual=252)
    assert math.isnan(short["cagr"]) and math.isnan(short["calmar"])
    assert short["total_return"] == pytest.approx(0.21) and short["max_drawdown"] == pytest.approx(1 - 99 / 110)
    enough = metrics.compute(hand_simulation(), 100.0, day_end=np.arange(4), years=days(metrics.CAGR_MIN_DAYS),
                             annual=252)
    assert enough["cagr"] == pytest.approx(1.21 ** (365.25 / 30) - 1)
    assert enough["calmar"] == pytest.approx(enough["cagr"] / (1 - 99 / 110))


def test_undefined_metrics_are_nan():
    sim = simulate(OPEN, CLOSE, np.zeros(5), Execution(cash=100))
    m = metrics.compute(sim, 100.0, np.arange(5), 1.0, 252)
    assert m["trades"] == 0 and math.isnan(m["win_rate"]) and math.isnan(m["profit_factor"])
    assert math.isnan(m["sharpe"]) and m["max_drawdown"] == 0


# user strategies and parameters ---------------------------------------------------------------

@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_strats.py").write_text(
        "import numpy as np\n"
        "def always_long(bars, size: float = 1.0):\n    return np.full(len(bars), size)\n"
        "def needs_window(bars, window):\n    return np.zeros(len(bars))\n"
        "def wrong_length(bars):\n    return np.zeros(3)\n"
        "NOT_A_FUNCTION = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_strats"


def test_user_strategy_by_dotted_path(user_module):
    func = strategies.load(f"{user_module}:always_long")
    assert strategies.validate(f"{user_module}:always_long", {"size": 1}) == {"size": 1.0}
    data = sweep.SymbolBars("X", frame(CLOSE, OPEN), np.arange(5), 1.0, 252)
    sim, m = sweep.run(data, func, {"size": 0.5}, Execution(cash=100))
    assert sim.trades.units[0] == 4  # floor(50 / 11)
    assert m["final_equity"] == pytest.approx(100 + 4 * (14.5 - 11))


@pytest.mark.parametrize("name, params, message", [
    ("nope", {}, "unknown strategy 'nope'"),
    ("no_such_module_x:f", {}, "cannot import 'no_such_module_x'"),
    ("my_strats:missing", {}, "has no function 'missing'"),
    ("my_strats:NOT_A_FUNCTION", {}, "has no function"),
    ("my_strats:always_long", {"sise": 1.0}, "has no parameter sise"),
    ("my_strats:needs_window", {}, "needs a value for parameter window"),
    ("my_strats:always_long", {"size": "big"}, "must be a float"),
    ("sma_crossover", {"fast": 20, "slow": 10}, "fast must be smaller than slow"),
    ("sma_crossover", {"fast": 2.5}, "must be a int"),
    ("rsi_reversion", {"lower": 80}, "need 0 < lower < upper < 100"),
    ("bollinger_breakout", {"k": -1.0}, "k must be positive"),
])
def test_invalid_strategies_and_parameters_say_what_is_wrong(user_module, name, params, message):
    with pytest.raises(UserError, match=message):
        strategies.validate(name, params)


def test_strategy_results_are_checked_against_the_contract(user_module):
    with pytest.raises(ValueError, match="one target per bar"):
        strategies.target_positions(strategies.load(f"{user_module}:wrong_length"), frame(CLOSE), {})
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        strategies.target_positions(strategies.load(f"{user_module}:always_long"), frame(CLOSE), {"size": 2.0})


def test_parameter_values_grid_and_sample():
    assert request.parse_values("5,10,20") == [5, 10, 20]
    assert request.parse_values("10:50:20") == [10, 30, 50]
    assert request.parse_values("1.5:2:0.25") == [1.5, 1.75, 2.0]
    with pytest.raises(UserError):
        request.parse_values("1:5:0")
    sets = sweep.grid({"a": [1, 2], "b": [3, 4, 5]})
    assert sets[:2] == [{"a": 1, "b": 3}, {"a": 1, "b": 4}] and len(sets) == 6
    drawn = sweep.sample(sets, 3, seed=1)
    assert len(drawn) == 3 and drawn == sweep.sample(sets, 3, seed=1) and all(d in sets for d in drawn)


@pytest.mark.parametrize("symbols, sets, tasks, chunks", [
    (["A", "B", "C", "D"], 6, 2, None), (["A", "B", "C"], 6, 2, None), (["A"], 5, 2, None), (["A"], 1, 4, None),
    (["A", "B"], 10, 4, None), (["A", "B", "C"], 6, 1, 2), ([f"S{i}" for i in range(10)], 100, 2, None)])
def test_plan_gives_every_run_to_one_task_in_equal_shares(symbols, sets, tasks, chunks):
    work = sweep.plan(symbols, sets, tasks, chunks)
    runs = [(symbol, i) for share in work for symbol, indices in share.items() for i in indices]
    assert sorted(runs) == sorted((symbol, i) for symbol in symbols for i in range(sets))  # each run once
    assert all(share[symbol] == sorted(share[symbol]) for share in work for symbol in share)
    sizes = [sum(map(len, share.values())) for share in work]
    assert len(work) <= tasks and max(sizes) - min(sizes) <= 1


def test_plan_keeps_a_tasks_symbols_together():
    work = sweep.plan([f"S{i}" for i in range(10)], 100, 2)
    assert [list(share) for share in work] == [[f"S{i}" for i in range(5)], [f"S{i}" for i in range(5, 10)]]
    assert all(indices == list(range(100)) for share in work for indices in share.values())
    assert sweep.plan(["A", "B", "C"], 4, 2) == [{"A": [0, 1, 2, 3], "B": [0, 2]}, {"B": [1, 3], "C": [0, 1, 2, 3]}]
    assert sweep.plan(["A"], 5, 2) == [{"A": [0, 2, 4]}, {"A": [1, 3]}]


def test_request_options_round_trip_through_the_job_arguments(settings):
    parser = argparse.ArgumentParser()
    request.add_arguments(parser, settings)
    argv = ["--strategy", "sma_crossover", "--symbol", "AAPL", "--symbol", "BINANCE:BTCUSDT", "--start",
            "2025-01-01", "--end", "2025-02-01T12:00+01:00", "--param", "fast=5:15:5", "--param", "slow=30,60",
            "--samples", "4", "--long-only", "--commission", "0.001", "--timeframe", "5m"]
    asked = request.from_args(parser.parse_args(argv))
    assert asked.params == {"fast": [5, 10, 15], "slow": [30, 60]} and len(asked.param_sets()) == 4
    assert asked.end.isoformat() == "2025-02-01T11:00:00+00:00"
    assert request.from_args(parser.parse_args(asked.to_argv())) == asked


def test_help_lists_every_built_in_strategy(settings):
    parser = argparse.ArgumentParser()
    request.add_arguments(parser, settings)
    text = parser.format_help()
    assert all(name in text for name in strategies.BUILT_IN)
