"""The options of the lake's batch jobs, typed: each job and the ``ticklake`` command that runs it
declare them with the same ``add_arguments`` (defaults from the settings), check them with the
same ``from_args`` (a ``UserError`` before any Spark work), and the command hands them on with
``to_argv``. No Spark here, so the CLI stays quick."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ticklake import arguments
from ticklake.backtest import request
from ticklake.config import Settings
from ticklake.times import DAY, floor_time

if TYPE_CHECKING:
    from ticklake.backtest.store import CheckedRequest


class JobOptions(Protocol):
    """What ``jobs.job.run_job`` needs of a job's options (those the CLI hands on have ``to_argv``)."""

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None: ...

    @classmethod
    def from_args(cls, settings: Settings, args: argparse.Namespace) -> JobOptions: ...


def _symbols(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--symbol", action="append", default=[], type=arguments.symbol,
                        help="repeat for several; default: all")


@dataclass(frozen=True)
class RollupOptions:
    """``jobs/rollup_bars.py``, ``ticklake rollup``."""

    start: datetime
    end: datetime
    timeframes: list[str]
    symbols: list[str]

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
        parser.add_argument("--start", type=arguments.time, help="ISO time, widened to 00:00 UTC "
                                                                "(default: --days before --end)")
        parser.add_argument("--end", type=arguments.time, help="ISO time, widened to the next 00:00 UTC "
                                                              "(default: now)")
        parser.add_argument("--days", type=arguments.positive, default=2,
                            help="without --start: this many UTC days up to --end (default 2)")
        parser.add_argument("--timeframe", action="append", default=[],
                            help="repeat for several; default: every configured one "
                                 f"({', '.join(settings.iceberg.rollup_tables)})")
        _symbols(parser)

    @classmethod
    def from_args(cls, settings: Settings, args: argparse.Namespace, now: datetime | None = None) -> RollupOptions:
        arguments.check_known("timeframe", args.timeframe, settings.iceberg.rollup_tables)
        end = args.end or now or datetime.now(timezone.utc)
        start = args.start or floor_time(end, DAY) - timedelta(days=args.days - 1)
        # The job widens the range to whole days, so an empty one would still roll up a day.
        arguments.check_range(start, end)
        return cls(start, end, args.timeframe or list(settings.iceberg.rollup_tables), args.symbol)

    def to_argv(self) -> list[str]:
        return [f"--start={self.start.isoformat()}", f"--end={self.end.isoformat()}",
                *(f"--timeframe={t}" for t in self.timeframes), *(f"--symbol={s}" for s in self.symbols)]


@dataclass(frozen=True)
class RebuildOptions:
    """``jobs/rebuild_bars.py``; ``ticklake import trades`` runs it for what it imported."""

    start: datetime
    end: datetime
    symbols: list[str]

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
        parser.add_argument("--start", required=True, type=arguments.time, help="ISO time, UTC unless it has an offset")
        parser.add_argument("--end", required=True, type=arguments.time)
        _symbols(parser)

    @classmethod
    def from_args(cls, settings: Settings, args: argparse.Namespace) -> RebuildOptions:
        arguments.check_range(args.start, args.end)
        return cls(args.start, args.end, args.symbol)

    def to_argv(self) -> list[str]:
        return [f"--start={self.start.isoformat()}", f"--end={self.end.isoformat()}",
                *(f"--symbol={s}" for s in self.symbols)]


@dataclass(frozen=True)
class MaintainOptions:
    """``jobs/maintain_lake.py``, ``ticklake maintain``: lake tables by name (none: every one)."""

    tables: list[str]  # identifiers, namespace.table

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
        parser.add_argument("--table", action="append", default=[], help="table name; repeat for several; default: all")

    @classmethod
    def from_args(cls, settings: Settings, args: argparse.Namespace) -> MaintainOptions:
        from ticklake.lake import table_specs

        known = {identifier.split(".", 1)[1]: identifier for identifier in table_specs(settings)}
        arguments.check_known("table", args.table, list(known))
        return cls([known[t] for t in args.table])

    def to_argv(self) -> list[str]:
        return [f"--table={identifier.split('.', 1)[1]}" for identifier in self.tables]


@dataclass(frozen=True)
class BacktestOptions:
    """``jobs/backtest.py``, ``ticklake backtest``: the request (``ticklake.backtest.request``),
    checked against the lake (``ticklake.backtest.store.check``), and how the job shares it out."""

    checked: CheckedRequest
    chunks: int | None = None
    summary: Path | None = None

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser, settings: Settings) -> None:
        request.add_arguments(parser, settings)
        parser.add_argument("--chunks", type=int, help="parameter-set chunks per symbol (default: just enough to "
                                                       "give every core the same share)")
        parser.add_argument("--summary", type=Path, help="also write the sweep's figures to this JSON file")

    @classmethod
    def from_args(cls, settings: Settings, args: argparse.Namespace) -> BacktestOptions:
        from ticklake.backtest import store

        summary = args.summary.resolve() if args.summary else None  # the job runs in the project folder
        return cls(store.check(settings, request.from_args(args)), args.chunks, summary)

    def to_argv(self) -> list[str]:
        argv = self.checked.request.to_argv()
        if self.chunks is not None:
            argv += ["--chunks", str(self.chunks)]
        return argv + (["--summary", str(self.summary)] if self.summary is not None else [])
