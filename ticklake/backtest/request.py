"""What a backtest is asked to do: the options shared by ``ticklake backtest`` and
``jobs/backtest.py``, checked before any Spark work. Imports of the engine are deferred, so that
building the command line stays quick."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import datetime

from ticklake import arguments
from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.timeframes import RESAMPLED

RANKABLE = ("sharpe", "sortino", "total_return", "cagr", "calmar", "profit_factor", "win_rate")


@dataclass(frozen=True)
class BacktestRequest:
    strategy: str
    symbols: list[str]
    start: datetime
    end: datetime
    timeframe: str = "1m"
    params: dict[str, list] = field(default_factory=dict)
    samples: int | None = None
    seed: int = 0
    cash: float = 10_000.0
    commission: float = 0.0
    slippage: float = 0.0
    long_only: bool = False
    rank_by: str = "sharpe"
    details: int = 5
    bars_table: str = ""

    @property
    def execution(self):
        from ticklake.backtest.engine import Execution

        return Execution(cash=self.cash, commission=self.commission, slippage=self.slippage,
                         allow_short=not self.long_only)

    def param_sets(self) -> list[dict]:
        """The sweep's parameter sets, each complete and checked (UserError otherwise)."""
        from ticklake.backtest import strategies, sweep

        sets = sweep.grid(self.params)
        if self.samples is not None:
            sets = sweep.sample(sets, self.samples, self.seed)
        return [strategies.validate(self.strategy, p) for p in sets]

    def to_argv(self) -> list[str]:
        """The command-line options that give this request back (``from_args(parse(...))``)."""
        argv = ["--strategy", self.strategy, "--start", self.start.isoformat(), "--end", self.end.isoformat(),
                "--timeframe", self.timeframe, "--seed", str(self.seed), "--cash", repr(self.cash),
                "--commission", repr(self.commission), "--slippage", repr(self.slippage),
                "--rank-by", self.rank_by, "--details", str(self.details), "--bars-table", self.bars_table]
        for symbol in self.symbols:
            argv += ["--symbol", symbol]
        for name, values in self.params.items():
            argv += ["--param", f"{name}={','.join(json.dumps(v) for v in values)}"]
        if self.samples is not None:
            argv += ["--samples", str(self.samples)]
        return argv + (["--long-only"] if self.long_only else [])


def _number(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return json.loads(text) if text[:1] in "\"[{" or text in ("true", "false") else text


def parse_values(text: str) -> list:
    """``5,10,20`` (a list) or ``10:50:10`` (start:stop:step, stop included when it is hit)."""
    if ":" in text and "," not in text:
        parts = [_number(p) for p in text.split(":")]
        if len(parts) != 3 or not all(isinstance(p, (int, float)) for p in parts) or parts[2] <= 0:
            raise UserError(f"range {text!r}: write start:stop:step with a positive step, e.g. 10:50:10")
        start, stop, step = parts
        count = int((stop - start) / step + 1e-9) + 1
        return [start + i * step for i in range(max(count, 0))]
    return [_number(p.strip()) for p in text.split(",") if p.strip()]


def _param(text: str) -> tuple[str, list]:
    name, sep, values = text.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUES, e.g. fast=5,10,20 or slow=20:100:10")
    try:
        return name.strip(), parse_values(values)
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
    bt = settings.backtest
    parser.add_argument("--strategy", required=True,
                        help="sma_crossover, rsi_reversion, bollinger_breakout (docs/BACKTESTS.md) or your "
                             "function as pkg.module:func")
    parser.add_argument("--symbol", action="append", required=True, dest="symbols", type=arguments.symbol,
                        help="repeat for several")
    parser.add_argument("--start", required=True, type=arguments.time, help="ISO time, UTC unless it has an offset")
    parser.add_argument("--end", required=True, type=arguments.time, help="ISO time, excluded")
    parser.add_argument("--timeframe", default="1m", choices=RESAMPLED)
    parser.add_argument("--param", action="append", type=_param, default=[], dest="params",
                        help="NAME=VALUES, repeat per parameter: 5,10,20 or start:stop:step; the sweep is "
                             "their grid (default: the strategy's defaults)")
    parser.add_argument("--samples", type=int, help="run this many parameter sets drawn at random from the grid")
    parser.add_argument("--seed", type=int, default=0, help="of the random draw")
    parser.add_argument("--cash", type=float, default=bt.cash)
    parser.add_argument("--commission", type=float, default=bt.commission, help="fraction of traded value per fill")
    parser.add_argument("--slippage", type=float, default=bt.slippage, help="fraction of the price per fill")
    parser.add_argument("--long-only", action="store_true", help="negative targets mean flat")
    parser.add_argument("--rank-by", default=bt.rank_by, choices=RANKABLE)
    parser.add_argument("--details", type=int, default=bt.detail_runs,
                        help="keep trades, equity curve and an HTML report of this many best runs")
    parser.add_argument("--bars-table", default=settings.iceberg.bars_table,
                        help="Iceberg bars table in the lake's namespace")


def from_args(args: argparse.Namespace) -> BacktestRequest:
    """The request of parsed options, checked as far as it can be without the lake."""
    arguments.check_range(args.start, args.end)
    if args.samples is not None and args.samples < 1:
        raise UserError("--samples must be at least 1")
    if args.details < 0:
        raise UserError("--details must be 0 or more")
    names = [name for name, _ in args.params]
    if len(set(names)) != len(names):
        raise UserError(f"--param given twice for {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    request = BacktestRequest(
        strategy=args.strategy, symbols=list(dict.fromkeys(args.symbols)), start=args.start, end=args.end,
        timeframe=args.timeframe, params=dict(args.params), samples=args.samples, seed=args.seed, cash=args.cash,
        commission=args.commission, slippage=args.slippage, long_only=args.long_only, rank_by=args.rank_by,
        details=args.details, bars_table=args.bars_table)
    try:
        request.execution
    except ValueError as error:
        raise UserError(str(error)) from error
    request.param_sets()
    return request
