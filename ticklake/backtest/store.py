"""The lake side of a backtest that needs no Spark: checks before the job starts, the bars
snapshot it pins and reading it, the result tables, and the code version it records."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from importlib import metadata

import pandas as pd
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, In, LessThan

from schemas.models import BAR_COLUMNS
from ticklake import lake
from ticklake.backtest.request import BacktestRequest
from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError
from ticklake.times import shown


@dataclass(frozen=True)
class CheckedRequest:
    request: BacktestRequest
    bars_identifier: str  # namespace.table
    snapshot_id: int
    param_sets: list[dict]


def check(settings: Settings, request: BacktestRequest) -> CheckedRequest:
    """Every check that needs the lake (bars table, a snapshot, bars for each symbol in the range),
    and the result tables created; a UserError saying what to do otherwise."""
    param_sets = request.param_sets()
    identifier = lake.identifier(settings, request.bars_table)
    try:
        table = lake.catalog(settings).load_table(identifier)
    except NoSuchTableError as error:
        raise UserError(f"no bars table {identifier} in the lake at {settings.iceberg.catalog_db}; "
                        "run the pipeline (ticklake demo) or pass --bars-table") from error
    snapshot = table.current_snapshot()
    if snapshot is None:
        raise UserError(f"the bars table {identifier} is empty")
    missing = [symbol for symbol in request.symbols
               if table.scan(row_filter=bars_filter(request, [symbol]), selected_fields=("symbol",),
                             snapshot_id=snapshot.snapshot_id, limit=1).to_arrow().num_rows == 0]
    if missing:
        raise UserError(f"no bars in {identifier} for {', '.join(missing)} from {shown(request.start)} "
                        f"to {shown(request.end)}; check the symbols and the range")
    lake.ensure_backtest_tables(settings)
    return CheckedRequest(request, identifier, snapshot.snapshot_id, param_sets)


def bars_filter(request: BacktestRequest, symbols: list[str]) -> BooleanExpression:
    return And(In("symbol", symbols), GreaterThanOrEqual("window_start", request.start.isoformat()),
               LessThan("window_start", request.end.isoformat()))


def read_bars(settings: Settings, checked: CheckedRequest, symbols: list[str]) -> pd.DataFrame:
    """The request's bars of ``symbols`` (BAR_COLUMNS) as of the pinned snapshot."""
    table = lake.catalog(settings).load_table(checked.bars_identifier)
    return table.scan(row_filter=bars_filter(checked.request, symbols), selected_fields=tuple(BAR_COLUMNS),
                      snapshot_id=checked.snapshot_id).to_pandas()


def code_version() -> str:
    """The git commit of the code (``-dirty`` with uncommitted changes), else the package version."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_code_dir(), capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_code_dir(),
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"git:{sha}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        try:
            return f"ticklake {metadata.version('ticklake')}"
        except metadata.PackageNotFoundError:
            return "unknown"


def _code_dir() -> str | None:
    """The project folder; None (the working directory) when the code runs from spark-submit's zip."""
    return str(PROJECT_ROOT) if PROJECT_ROOT.is_dir() else None
