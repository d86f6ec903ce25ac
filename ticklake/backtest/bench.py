"""``ticklake bench backtest``: bar evaluations per second of a parameter sweep, on Spark with 1
and 2 executors (local[1], local[2]), in one process with the same engine, and with vectorbt."""
from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ticklake import lake
from ticklake.backtest import strategies, sweep, synthetic
from ticklake.backtest.request import BacktestRequest
from ticklake.config import Settings
from ticklake.submit import spark_submit

SYMBOLS = [f"SYN{i:02d}" for i in range(10)]


def bench_settings(settings: Settings) -> Settings:
    """Its own bars and result tables, so a benchmark never mixes with real results."""
    bt = settings.backtest
    return settings.model_copy(update={"backtest": bt.model_copy(update={
        "runs_table": f"bench_{bt.runs_table}", "trades_table": f"bench_{bt.trades_table}",
        "equity_table": f"bench_{bt.equity_table}"})})


def sweep_request(settings: Settings, raw: pd.DataFrame) -> BacktestRequest:
    """SMA crossover, 10 fast × 10 slow windows, over all of ``raw``."""
    return BacktestRequest(
        strategy="sma_crossover", symbols=SYMBOLS, start=raw["window_start"].min().tz_localize("UTC").to_pydatetime(),
        end=(raw["window_start"].max() + pd.Timedelta(minutes=1)).tz_localize("UTC").to_pydatetime(), timeframe="1m",
        params={"fast": list(range(5, 51, 5)), "slow": list(range(60, 241, 20))}, commission=0.0005, details=0,
        bars_table=settings.backtest.bench_bars_table)


def single_process(raw: pd.DataFrame, request: BacktestRequest, settings: Settings) -> float:
    """Seconds for the whole sweep with the engine in this process (bars already in memory)."""
    bt, started = settings.backtest, time.perf_counter()
    func, param_sets = strategies.load(request.strategy), request.param_sets()
    for symbol, bars in raw.groupby("symbol"):
        data = sweep.prepare(symbol, bars, request.timeframe, bt.every_day_prefixes, bt.trading_days)
        sweep.evaluate(data, func, param_sets, request.execution)
    return time.perf_counter() - started


def vectorbt_sweep(raw: pd.DataFrame, request: BacktestRequest) -> float | None:
    """Seconds for the same sweep in vectorbt (signals on the close, fills at the next open, all-in,
    long and short), all parameter sets of a symbol as columns of one portfolio; None without vectorbt."""
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    sets = request.param_sets()
    run_portfolios = lambda frames: [_vectorbt_symbol(vbt, bars, sets, request) for bars in frames]  # noqa: E731
    run_portfolios([raw[raw["symbol"] == SYMBOLS[0]].head(1000)])  # numba compilation, not timed
    started = time.perf_counter()
    run_portfolios(bars for _, bars in raw.groupby("symbol"))
    return time.perf_counter() - started


def _vectorbt_symbol(vbt, bars: pd.DataFrame, sets: list[dict], request: BacktestRequest) -> None:
    close, open_ = bars["close"].to_numpy(), bars["open"].to_numpy()
    fast = vbt.MA.run(close, [p["fast"] for p in sets]).ma.to_numpy()
    slow = vbt.MA.run(close, [p["slow"] for p in sets]).ma.to_numpy()
    diff = fast - slow
    before = np.vstack([np.full((1, diff.shape[1]), np.nan), diff[:-1]])
    up, down = (before < 0) & (diff > 0), (before > 0) & (diff < 0)
    shift = lambda a: np.vstack([np.zeros((1, a.shape[1]), bool), a[:-1]])  # noqa: E731
    portfolio = vbt.Portfolio.from_signals(
        close[:, None], entries=shift(up), exits=shift(down), price=open_[:, None], direction="both", size=np.inf,
        size_granularity=1, fees=request.commission, init_cash=request.cash, freq="1min")
    portfolio.total_return(), portfolio.sharpe_ratio(), portfolio.max_drawdown()


def bench_backtest(settings: Settings, days: int, progress: Callable[[str], None]) -> dict:
    settings = bench_settings(settings)
    table = settings.backtest.bench_bars_table
    progress(f"writing {len(SYMBOLS)} symbols × {days} days of 1-minute bars to {table} ...")
    raw = synthetic.minute_bars(SYMBOLS, days, seed=42)
    synthetic.write_bars(settings, table, raw)
    lake.ensure_backtest_tables(settings)
    request = sweep_request(settings, raw)
    evaluations = len(raw) * len(request.param_sets())
    figures: dict = {"bars": len(raw), "parameter_sets": len(request.param_sets()), "bar_evaluations": evaluations}
    with tempfile.TemporaryDirectory() as folder:
        for cores in (1, 2):
            summary = Path(folder) / f"local{cores}.json"
            progress(f"Spark sweep on local[{cores}] ...")
            spark_submit(settings, "jobs/backtest.py", *request.to_argv(), "--summary", str(summary),
                         spark_args=("--master", f"local[{cores}]"))
            seconds = json.loads(summary.read_text())["sweep_seconds"]
            figures[f"spark_local{cores}"] = {"seconds": round(seconds, 2), "per_second": round(evaluations / seconds)}
    progress("the same sweep in this process (numpy engine) ...")
    raw["window_start"] = pd.to_datetime(raw["window_start"], utc=True)
    seconds = single_process(raw, request, settings)
    figures["single_process"] = {"seconds": round(seconds, 2), "per_second": round(evaluations / seconds)}
    progress("the same sweep with vectorbt ...")
    seconds = vectorbt_sweep(raw, request)
    figures["vectorbt"] = ({"seconds": round(seconds, 2), "per_second": round(evaluations / seconds)}
                           if seconds else "not installed: pip install -e '.[bench]'")
    best = figures["spark_local2"]["per_second"]
    figures["ratios"] = {
        "spark_local2_over_local1": round(best / figures["spark_local1"]["per_second"], 2),
        "spark_local2_over_single_process": round(best / figures["single_process"]["per_second"], 2),
        **({"spark_local2_over_vectorbt": round(best / figures["vectorbt"]["per_second"], 2)} if seconds else {}),
    }
    return figures
