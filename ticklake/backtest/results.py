"""Rows of the result tables (schemas.models BacktestRun, BacktestTrade, EquityPoint) as pandas frames."""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd

from schemas.models import BacktestRun, BacktestTrade, EquityPoint
from ticklake.backtest.metrics import drawdown
from ticklake.backtest.request import BacktestRequest
from ticklake.backtest.engine import Simulation
from ticklake.backtest.sweep import SymbolBars


def ranked(results: pd.DataFrame, rank_by: str) -> pd.DataFrame:
    """Best first by ``rank_by`` (higher is better; undefined last), ties by total return, then
    symbol and parameter order; ``rank`` counts from 1."""
    out = results.sort_values([rank_by, "total_return", "symbol", "param_index"],
                              ascending=[False, False, True, True], na_position="last", kind="stable")
    return out.reset_index(drop=True).assign(rank=lambda f: np.arange(1, len(f) + 1))


def run_rows(results: pd.DataFrame, request: BacktestRequest, param_sets: list[dict], sweep_id: str,
             created_at: datetime, bars_table: str, snapshot_id: int, code_version: str) -> pd.DataFrame:
    """BacktestRun rows of ranked sweep results (columns of ``sweep.evaluate`` plus symbol,
    param_index, first_bar, last_bar, bars, rank)."""
    frame = results.assign(
        run_id=[f"{sweep_id}-{rank:05d}" for rank in results["rank"]], sweep_id=sweep_id, created_at=created_at,
        strategy=request.strategy, params=[json.dumps(param_sets[i], sort_keys=True) for i in results["param_index"]],
        timeframe=request.timeframe, range_start=request.start, range_end=request.end, bars_table=bars_table,
        bars_snapshot_id=snapshot_id, code_version=code_version, cash=request.cash, commission=request.commission,
        slippage=request.slippage, allow_short=not request.long_only, report=None,
    )
    frame["trades"] = frame["trades"].astype("int64")
    return frame[list(BacktestRun.model_fields)]


def trade_rows(run_id: str, data: SymbolBars, sim: Simulation) -> pd.DataFrame:
    t, times = sim.trades, data.bars.index
    side = np.sign(t.units)
    return pd.DataFrame({
        "run_id": run_id, "symbol": data.symbol, "trade_no": np.arange(1, len(t) + 1, dtype=np.int64),
        "units": t.units, "entry_time": times[t.entry_bar], "exit_time": times[t.exit_bar],
        "entry_price": t.entry_price, "exit_price": t.exit_price, "commission": t.commission, "pnl": t.pnl,
        "return_pct": side * (t.exit_price / t.entry_price - 1) * 100, "is_open": t.is_open,
    })[list(BacktestTrade.model_fields)]


def equity_rows(run_id: str, data: SymbolBars, sim: Simulation, cash: float) -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": run_id, "symbol": data.symbol, "time": data.bars.index, "close": data.bars["close"].to_numpy(),
        "position": sim.units, "equity": sim.equity, "drawdown": drawdown(sim.equity, cash),
    })[list(EquityPoint.model_fields)]
