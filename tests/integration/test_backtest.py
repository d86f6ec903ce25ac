"""Backtests on a real Iceberg lake and Spark: agreement with backtesting.py to the trade, the job
through ``ticklake backtest``, and bad input refused before Spark starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from pyiceberg.expressions import EqualTo

from ticklake import lake
from ticklake.backtest import store, synthetic
from ticklake.backtest.request import BacktestRequest
from ticklake.config import PROJECT_ROOT

pytestmark = pytest.mark.integration

backtesting = pytest.importorskip("backtesting")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import EURUSD, GOOG, SMA  # noqa: E402


@pytest.fixture
def spark(lake_spark):
    return lake_spark


def load_into_lake(settings, frames: dict[str, pd.DataFrame], width: pd.Timedelta) -> None:
    """backtesting.py sample data (Open, High, Low, Close, Volume by time) as lake bars."""
    bars = pd.concat([
        frame.rename(columns=str.lower).rename_axis("window_start").reset_index().assign(symbol=symbol, trade_count=1)
        for symbol, frame in frames.items()])
    synthetic.write_bars(settings, settings.iceberg.bars_table, bars, width)


def rows(settings, table: str, run_id: str) -> pd.DataFrame:
    identifier = f"{settings.iceberg.namespace}.{table}"
    return lake.catalog(settings).load_table(identifier).scan(row_filter=EqualTo("run_id", run_id)).to_pandas()


def backtest_in_lake(spark, settings, **request):
    from jobs import backtest as job

    base = dict(start=datetime(2000, 1, 1, tzinfo=timezone.utc), end=datetime(2030, 1, 1, tzinfo=timezone.utc),
                details=1, bars_table=settings.iceberg.bars_table)
    result = job.run(spark, settings, store.check(settings, BacktestRequest(**{**base, **request})))
    best = result.runs.iloc[0]
    return best, rows(settings, settings.backtest.trades_table, best["run_id"]).sort_values("trade_no")


def assert_same_trades(ours: pd.DataFrame, stats) -> None:
    """Every closed trade of backtesting.py, ours in the same order: times, prices and sizes."""
    theirs = stats["_trades"]
    closed = ours[~ours["is_open"]].reset_index(drop=True)
    assert len(closed) == len(theirs) > 10
    to_utc = lambda s: pd.to_datetime(s).dt.tz_localize("UTC")  # noqa: E731
    assert (pd.to_datetime(closed["entry_time"], utc=True) == to_utc(theirs["EntryTime"])).all()
    assert (pd.to_datetime(closed["exit_time"], utc=True) == to_utc(theirs["ExitTime"])).all()
    np.testing.assert_array_equal(closed["entry_price"], theirs["EntryPrice"])
    np.testing.assert_array_equal(closed["exit_price"], theirs["ExitPrice"])
    np.testing.assert_array_equal(closed["units"], theirs["Size"])
    np.testing.assert_allclose(closed["pnl"], theirs["PnL"], rtol=1e-9)


class SmaCross(Strategy):
    """backtesting.py's own tutorial strategy."""
    n1, n2 = 10, 20

    def init(self):
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.sell()


def wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """RSI written out as Wilder defines it, independently of the product's vectorised one."""
    out, change = np.full(len(close), np.nan), np.diff(close)
    gain, loss = np.clip(change, 0, None), np.clip(-change, 0, None)
    avg_gain, avg_loss = gain[:period].mean(), loss[:period].mean()
    out[period] = 100 - 100 / (1 + avg_gain / avg_loss)
    for i in range(period, len(change)):
        avg_gain = (avg_gain * (period - 1) + gain[i]) / period
        avg_loss = (avg_loss * (period - 1) + loss[i]) / period
        out[i + 1] = 100 - 100 / (1 + avg_gain / avg_loss)
    return out


class RsiReversion(Strategy):
    period, lower, upper = 14, 30, 70

    def init(self):
        self.rsi = self.I(wilder_rsi, self.data.Close, self.period)

    def next(self):
        if self.rsi[-1] < self.lower and not self.position:
            self.buy()
        elif self.rsi[-1] > self.upper and self.position:
            self.position.close()


def run_backtesting_py(data, strategy, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trades left open at the end; we compare closed ones
        return Backtest(data, strategy, finalize_trades=False, **options).run()


def test_sma_crossover_agrees_with_backtesting_py_to_the_trade(spark, spark_lake_settings):
    lake_settings = spark_lake_settings
    load_into_lake(lake_settings, {"GOOG": GOOG}, pd.Timedelta(days=1))
    stats = run_backtesting_py(GOOG, SmaCross, cash=10_000, commission=0.002, exclusive_orders=True)
    best, trades = backtest_in_lake(spark, lake_settings, strategy="sma_crossover", symbols=["GOOG"],
                                    timeframe="1d", params={"fast": [10], "slow": [20]}, cash=10_000.0,
                                    commission=0.002)
    assert_same_trades(trades, stats)
    assert best["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=1e-3)
    assert best["trades"] == stats["# Trades"]
    assert best["win_rate"] == pytest.approx(stats["Win Rate [%]"] / 100)
    assert best["max_drawdown"] == pytest.approx(-stats["Max. Drawdown [%]"] / 100, rel=1e-6)
    report = open(best["report"]).read()
    assert "<svg" in report and "GOOG" in report
    equity = rows(lake_settings, lake_settings.backtest.equity_table, best["run_id"])
    assert len(equity) == len(GOOG) and equity["equity"].iloc[-1] == pytest.approx(best["final_equity"])


def test_long_only_rsi_reversion_agrees_with_backtesting_py_to_the_trade(spark, spark_lake_settings):
    lake_settings = spark_lake_settings
    load_into_lake(lake_settings, {"OANDA:EUR_USD": EURUSD}, pd.Timedelta(hours=1))
    stats = run_backtesting_py(EURUSD, RsiReversion, cash=10_000, commission=0.0002)
    best, trades = backtest_in_lake(spark, lake_settings, strategy="rsi_reversion", symbols=["OANDA:EUR_USD"],
                                    timeframe="1h", params={"period": [14], "lower": [30.0], "upper": [70.0]},
                                    cash=10_000.0, commission=0.0002, long_only=True)
    assert (trades["units"] > 0).all()
    assert_same_trades(trades, stats)
    assert best["final_equity"] == pytest.approx(stats["Equity Final [$]"], rel=1e-3)


def ticklake(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.as_environment()}
    return subprocess.run([sys.executable, "-m", "ticklake.cli", "backtest", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_ticklake_backtest_sweeps_ranks_and_writes_results_and_reports(lake_settings):
    bars = synthetic.minute_bars(["AAA", "BINANCE:BBB"], days=3, seed=3)
    synthetic.write_bars(lake_settings, lake_settings.iceberg.bars_table, bars)
    done = ticklake(lake_settings, "--strategy", "bollinger_breakout", "--symbol", "AAA", "--symbol", "BINANCE:BBB",
                    "--start", "2025-01-01", "--end", "2025-02-01", "--timeframe", "5m",
                    "--param", "window=10:30:10", "--param", "k=1.5,2", "--commission", "0.001", "--details", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 parameter sets × 2 symbols" in done.stderr
    # The job's progress: Spark joins a Python driver's stderr to its stdout. (The word "groups"
    # alone also matched Spark's INFO lines about ACL groups, when they reached the terminal.)
    assert "2/2 groups" in done.stdout + done.stderr
    catalog = lake.catalog(lake_settings)
    ns, bt = lake_settings.iceberg.namespace, lake_settings.backtest
    runs = catalog.load_table(f"{ns}.{bt.runs_table}").scan().to_pandas().sort_values("rank")
    assert len(runs) == 12 and list(runs["rank"]) == list(range(1, 13))
    assert runs["sharpe"].dropna().is_monotonic_decreasing
    assert set(runs["symbol"]) == {"AAA", "BINANCE:BBB"} and (runs["bars"] == 3 * 78).all()
    assert runs["bars_snapshot_id"].nunique() == 1 and runs["code_version"].str.len().min() > 0
    assert {json.loads(p)["window"] for p in runs["params"]} == {10, 20, 30}
    reports = runs["report"].dropna()
    assert len(reports) == 2 and all(f"report: {path}" in done.stdout for path in reports)
    detailed = set(runs.head(2)["run_id"])
    assert set(catalog.load_table(f"{ns}.{bt.equity_table}").scan().to_pandas()["run_id"]) == detailed
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("sweep ")) + 1
    assert lines[header].split()[:2] == ["rank", "symbol"]  # the ranked table, best first
    assert [int(line.split()[0]) for line in lines[header + 1:header + 13]] == list(range(1, 13))


@pytest.mark.parametrize("args, message", [
    (["--strategy", "moon_phase"], "unknown strategy 'moon_phase'"),
    (["--strategy", "sma_crossover", "--param", "fast=30", "--param", "slow=10"], "fast must be smaller than slow"),
    (["--strategy", "sma_crossover", "--param", "speed=3"], "has no parameter speed"),
    (["--strategy", "no_such_module:f"], "cannot import 'no_such_module'"),
    (["--strategy", "sma_crossover", "--end", "2024-12-01"], "empty range"),
    (["--strategy", "sma_crossover", "--symbol", "NOPE"], "no bars in"),
])
def test_bad_input_is_refused_before_spark_starts(lake_settings, args, message):
    synthetic.write_bars(lake_settings, lake_settings.iceberg.bars_table,
                         synthetic.minute_bars(["AAA"], days=1, seed=1))
    base = {"--symbol": "AAA", "--start": "2025-01-01", "--end": "2025-02-01"}
    for name, value in zip(args[::2], args[1::2]):
        base[name] = value if name != "--param" else base.get(name, []) + [value]
    argv = [item for name, value in base.items() for v in (value if isinstance(value, list) else [value])
            for item in (name, v)]
    done = ticklake(lake_settings, *argv)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "spark-submit" not in done.stderr
