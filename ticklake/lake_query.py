"""Time-range reads of the lake with pyiceberg, now or as it was (time travel).

``as_of`` is a snapshot id (digits) or an ISO time: the snapshot that was current then,
which answers "what did we know at 12:00?". Rows come back newest first, like the CQL
queries, as objects with one attribute per column.
"""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from ticklake import lake
from ticklake.config import Settings
from ticklake.errors import UserError

BARS_TIMEFRAME = "1m"


def _when(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc).isoformat(timespec="seconds")


def parse_as_of(text: str) -> int | datetime:
    """A snapshot id, or an ISO time (UTC unless it has an offset)."""
    if text.isdigit():
        return int(text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of {text!r} is neither a snapshot id nor an ISO time such as 2026-11-23T12:00") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def snapshot_as_of(table: Table, identifier: str, as_of: int | datetime) -> Snapshot:
    """The snapshot ``as_of`` names, or a ``UserError`` that says which ones there are."""
    snapshots = sorted(table.snapshots(), key=lambda s: s.timestamp_ms)
    if not snapshots:
        raise UserError(f"the lake table {identifier} has no data yet (no snapshot)")
    span = (f"it has {len(snapshots)} snapshots, from {_when(snapshots[0].timestamp_ms)} "
            f"to {_when(snapshots[-1].timestamp_ms)}; list them with 'ticklake snapshots'")
    if isinstance(as_of, int):
        snapshot = table.snapshot_by_id(as_of)
        if snapshot is None:
            raise UserError(f"the lake table {identifier} has no snapshot {as_of}: {span}")
        return snapshot
    snapshot = table.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000))
    if snapshot is None:
        raise UserError(
            f"the lake table {identifier} has no snapshot at or before {as_of.isoformat()}: {span} "
            "(older ones are expired by maintenance after maintenance.snapshot_max_age_hours)"
        )
    return snapshot


def load(settings: Settings, identifier: str) -> Table:
    try:
        return lake.catalog(settings).load_table(identifier)
    except NoSuchTableError:
        raise UserError(f"there is no lake table {identifier}: 'ticklake up' creates the lake tables") from None


def table_identifier(settings: Settings, what: str, timeframe: str = BARS_TIMEFRAME) -> str:
    ice = settings.iceberg
    if what == "trades":
        return lake.identifier(settings, ice.trades_table)
    if timeframe == BARS_TIMEFRAME:
        return lake.identifier(settings, ice.bars_table)
    if timeframe not in ice.rollup_tables:
        raise UserError(f"no bars of timeframe {timeframe!r} in the lake: the rolled-up timeframes are "
                        f"{', '.join(ice.rollup_tables)} (setting iceberg.rollup_tables)")
    return lake.rollup_identifier(settings, timeframe)


def read(settings: Settings, what: str, symbol: str, start: datetime, end: datetime, *,
         as_of: str | None = None, timeframe: str = BARS_TIMEFRAME, limit: int | None = None) -> list:
    """Bars (of ``timeframe``) or trades of ``symbol`` with ``start <= time < end``, newest first."""
    identifier = table_identifier(settings, what, timeframe)
    table = load(settings, identifier)
    snapshot_id = snapshot_as_of(table, identifier, parse_as_of(as_of)).snapshot_id if as_of else None
    if snapshot_id is None and table.current_snapshot() is None:
        return []
    time_column = "trade_ts" if what == "trades" else "window_start"
    rows = table.scan(
        row_filter=And(EqualTo("symbol", symbol), GreaterThanOrEqual(time_column, start), LessThan(time_column, end)),
        snapshot_id=snapshot_id,
    ).to_arrow().sort_by([(time_column, "descending")])
    if limit is not None:
        rows = rows.slice(0, limit)
    return [SimpleNamespace(**row) for row in rows.to_pylist()]


def snapshots(settings: Settings, what: str, timeframe: str = BARS_TIMEFRAME) -> list:
    """The table's snapshots, oldest first: id, time, operation, rows added and total."""
    identifier = table_identifier(settings, what, timeframe)
    return [
        SimpleNamespace(snapshot_id=s.snapshot_id, committed_at=datetime.fromtimestamp(s.timestamp_ms / 1000, timezone.utc),
                        operation=s.summary.operation.value if s.summary else "",
                        added_records=(s.summary or {}).get("added-records", "0"),
                        total_records=(s.summary or {}).get("total-records", ""))
        for s in sorted(load(settings, identifier).snapshots(), key=lambda s: s.timestamp_ms)
    ]
