"""Batch job: backtest a strategy over the lake's bars, sweeping parameter sets × symbols on the executors.

    ./spark-submit.sh jobs/backtest.py --strategy sma_crossover --symbol AAPL --symbol MSFT \\
        --start 2026-01-01 --end 2026-07-01 --timeframe 5m --param fast=5:30:5 --param slow=40:200:20

The sweep's runs (symbol × parameter set) are shared out to one task per core (``sweep.plan``).
The driver reads the bars at the pinned snapshot once and ships each task its symbols' bars; the
task resamples each symbol once and evaluates its parameter sets with the vectorised engine.
Metrics of all runs go to the runs table, ranked; the best ``--details`` runs are re-run on the
driver for their trades, equity curves and HTML reports. Everything is checked before Spark starts.
"""
from __future__ import annotations

import json
import logging
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession

from jobs.job import run_job
from jobs.options import BacktestOptions
from jobs.session import iceberg_table
from schemas.derive import spark_schema
from schemas.models import BacktestRun, BacktestTrade, EquityPoint
from ticklake.backtest import report, request as req, results, store, strategies, sweep
from ticklake.backtest.metrics import METRICS
from ticklake.config import Settings
from ticklake.progress import Progress

log = logging.getLogger("ticklake.backtest")
SWEEP_COLUMNS = ["symbol", "param_index", "first_bar", "last_bar", "bars", "final_equity", *METRICS]


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    runs: pd.DataFrame  # BacktestRun rows, best first
    sweep_seconds: float  # reading the bars and evaluating every run on the executors
    bar_evaluations: int  # bars × parameter sets


def prepare(settings: Settings, timeframe: str, symbol: str, bars: pd.DataFrame) -> sweep.SymbolBars:
    bt = settings.backtest
    return sweep.prepare(symbol, bars, timeframe, bt.every_day_prefixes, bt.trading_days)


def import_engine(_) -> None:
    import ticklake.backtest.sweep  # noqa: F401


def evaluate_task(settings: Settings, request: req.BacktestRequest, param_sets: list[dict]):
    """The function of a sweep task: its share of the runs, symbol -> (its bars, indices of its
    parameter sets) -> their metrics, SWEEP_COLUMNS."""

    def evaluate(share: dict[str, tuple[pd.DataFrame, list[int]]]) -> pd.DataFrame:
        strategy, frames = strategies.load(request.strategy), []
        for symbol, (bars, indices) in share.items():
            data = prepare(settings, request.timeframe, symbol, bars)
            rows = pd.DataFrame(sweep.evaluate(data, strategy, [param_sets[i] for i in indices], request.execution))
            frames.append(rows.assign(symbol=symbol, param_index=indices, first_bar=data.bars.index[0],
                                      last_bar=data.bars.index[-1], bars=len(data.bars))[SWEEP_COLUMNS])
        return pd.concat(frames, ignore_index=True)

    return evaluate


class TaskProgress:
    """Prints the share of finished evaluation tasks while the sweep runs."""

    def __init__(self, spark: SparkSession, total: int) -> None:
        self.tracker, self.total = spark.sparkContext.statusTracker(), total
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        progress, seen, running = Progress(self.total, "groups"), 0, 0
        while not self.stop.wait(0.5):
            for job_id in self.tracker.getActiveJobsIds():
                job = self.tracker.getJobInfo(job_id)
                info = job and self.tracker.getStageInfo(max(job.stageIds))  # the last stage evaluates
                if info:
                    seen, running = max(seen, info.numCompletedTasks), info.numActiveTasks
            progress.update(seen, f"{running} running")
        progress.update(self.total)
        progress.finish("done")

    def __enter__(self) -> TaskProgress:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def run_sweep(spark: SparkSession, settings: Settings, checked: store.CheckedRequest,
              chunks: int | None = None) -> tuple[pd.DataFrame, float]:
    """Metrics of every (symbol, parameter set) in SWEEP_COLUMNS, and the seconds it took: one task per
    core, each with an equal share of the runs."""
    r, sc = checked.request, spark.sparkContext
    work = sweep.plan(r.symbols, len(checked.param_sets), sc.defaultParallelism, chunks)
    started = time.perf_counter()
    # A fresh Python worker takes seconds to import pandas and numba: start the workers while the
    # driver reads the bars and packs the tasks (the sweep's tasks then find them idle and ready).
    workers = threading.Thread(target=sc.parallelize(range(len(work)), len(work)).foreach, args=(import_engine,))
    workers.start()
    bars = {symbol: rows.drop(columns="symbol")
            for symbol, rows in store.read_bars(settings, checked, r.symbols).groupby("symbol")}
    shares = sc.parallelize([{symbol: (bars[symbol], indices) for symbol, indices in share.items()}
                             for share in work], len(work))
    workers.join()
    with TaskProgress(spark, len(work)):
        frames = shares.map(evaluate_task(settings, r, checked.param_sets)).collect()
    return pd.concat(frames, ignore_index=True), time.perf_counter() - started


def write(spark: SparkSession, settings: Settings, frame: pd.DataFrame, model, table: str) -> None:
    if len(frame):
        spark.createDataFrame(frame, spark_schema(model)).writeTo(iceberg_table(settings, table)).append()


def run(spark: SparkSession, settings: Settings, checked: store.CheckedRequest,
        chunks: int | None = None) -> SweepResult:
    """The whole backtest: sweep, rank, details and reports of the best runs, result tables."""
    r, bt = checked.request, settings.backtest
    sweep_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    metrics, seconds = run_sweep(spark, settings, checked, chunks)
    metrics["first_bar"] = pd.to_datetime(metrics["first_bar"], utc=True)
    metrics["last_bar"] = pd.to_datetime(metrics["last_bar"], utc=True)
    runs = results.run_rows(results.ranked(metrics, r.rank_by), r, checked.param_sets, sweep_id,
                            datetime.now(timezone.utc), checked.bars_identifier, checked.snapshot_id,
                            store.code_version())
    detailed = runs.head(r.details)
    trades, equity = [], []
    if len(detailed):
        raw = store.read_bars(settings, checked, sorted(set(detailed["symbol"])))
        folder = Path(bt.reports_dir) / sweep_id
        folder.mkdir(parents=True, exist_ok=True)
        for i, run_row in detailed.iterrows():
            data = prepare(settings, r.timeframe, run_row["symbol"], raw[raw["symbol"] == run_row["symbol"]])
            sim, _ = sweep.run(data, strategies.load(r.strategy), json.loads(run_row["params"]), r.execution)
            trades.append(results.trade_rows(run_row["run_id"], data, sim))
            equity.append(results.equity_rows(run_row["run_id"], data, sim, r.cash))
            path = folder / f"{run_row['run_id']}.html"
            path.write_text(report.render(run_row.to_dict(), data.bars, trades[-1], equity[-1]))
            runs.loc[i, "report"] = str(path)
    write(spark, settings, runs, BacktestRun, bt.runs_table)
    write(spark, settings, pd.concat(trades, ignore_index=True) if trades else pd.DataFrame(), BacktestTrade,
          bt.trades_table)
    write(spark, settings, pd.concat(equity, ignore_index=True) if equity else pd.DataFrame(), EquityPoint,
          bt.equity_table)
    return SweepResult(sweep_id, runs, seconds, int(metrics["bars"].sum()) if len(metrics) else 0)


def ranked_table(runs: pd.DataFrame, limit: int = 20) -> str:
    """The best runs as a plain-text table."""
    shown = runs.head(limit)[["rank", "symbol", "params", "total_return", "cagr", "sharpe", "max_drawdown",
                              "trades", "win_rate", "profit_factor", "exposure"]]
    text = shown.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="n/a")
    return text + (f"\n... {len(runs) - limit} more runs in the runs table" if len(runs) > limit else "")


def backtest(spark: SparkSession, settings: Settings, options: BacktestOptions) -> int:
    """The job's work: the backtest, then its ranked runs, speed and reports on stdout."""
    checked = options.checked
    result = run(spark, settings, checked, options.chunks)
    r = checked.request
    print(f"\nsweep {result.sweep_id}: {r.strategy}, {len(checked.param_sets)} parameter sets × "
          f"{len(r.symbols)} symbols, ranked by {r.rank_by}\n{ranked_table(result.runs)}")
    print(f"\n{result.bar_evaluations:,} bar evaluations in {result.sweep_seconds:.1f} s "
          f"({result.bar_evaluations / result.sweep_seconds:,.0f} per second)")
    for path in result.runs["report"].dropna():
        print(f"report: {path}")
    if options.summary:
        options.summary.write_text(json.dumps({
            "sweep_id": result.sweep_id, "runs": len(result.runs), "sweep_seconds": result.sweep_seconds,
            "bar_evaluations": result.bar_evaluations, "master": spark.sparkContext.master}))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job(__doc__, BacktestOptions, "ticklake-backtest", backtest, argv)


if __name__ == "__main__":
    sys.exit(main())
