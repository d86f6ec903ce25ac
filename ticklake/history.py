"""``ticklake import`` and ``ticklake export``: bars and trades files (CSV or Parquet) in and out
of the lake, for history that did not come through the feed.

An import reads the file row by row, maps its columns to ticklake's (``ALIASES`` are the
defaults, ``--map`` the exceptions), reads its times in a time zone and unit, and validates each
row with the model of ``schemas/`` (``Bar``; a trade as the producer checks it, ``FinnhubTrade``).
A row that fails is never dropped in silence: it goes to the rejects file with its line number
and the reason. The valid rows replace what the lake holds of their symbols in their time span
(imported trades only: trades from the feed are never touched), in one commit, so importing a
file again changes nothing. Imported trades have no Kafka position: they are stored with the
partition ``IMPORTED_PARTITION`` and their row number as offset.
"""
from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import ValidationError
from pyiceberg.expressions import (AlwaysTrue, And, BooleanExpression, EqualTo, GreaterThanOrEqual, In,
                                   LessThan, LessThanOrEqual, Or)

from schemas.models import MAX_TRADE_TIME_MS, Bar, FinnhubTrade
from ticklake import lake, lake_query
from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.progress import Progress
from ticklake.timeframes import seconds
from ticklake.times import EPOCH, floor_time, utc_day

IMPORTED_PARTITION = -1
TIME_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}  # per second; or "iso"
# ticklake's field -> the column names that mean it in a file, tried in order (any case).
ALIASES = {
    "bars": {"symbol": ("symbol", "ticker", "s"), "window_start": ("window_start", "time", "timestamp", "datetime",
                                                                   "date", "t"),
             "open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"), "close": ("close", "c"),
             "volume": ("volume", "v"), "trade_count": ("trade_count", "trades", "count", "n"), "vwap": ("vwap", "vw")},
    "trades": {"symbol": ("symbol", "ticker", "s"), "trade_ts": ("trade_ts", "time", "timestamp", "datetime", "t"),
               "price": ("price", "p"), "volume": ("volume", "size", "quantity", "qty", "v"),
               "exchange": ("exchange", "x"), "conditions": ("conditions", "c")},
}
OPTIONAL = {"bars": {"trade_count", "vwap"}, "trades": {"exchange", "conditions"}}
TIME_FIELD = {"bars": "window_start", "trades": "trade_ts"}
EXPORT_COLUMNS = {"bars": ["symbol", "window_start", "open", "high", "low", "close", "volume", "trade_count", "vwap"],
                  "trades": ["symbol", "trade_ts", "price", "volume", "exchange", "conditions"]}


class RowError(ValueError):
    """Why a row cannot be imported."""


@dataclass
class ImportOptions:
    what: str  # "bars" or "trades"
    file: Path
    mapping: dict[str, str] = field(default_factory=dict)  # ticklake field -> the file's column
    symbol: str | None = None  # for files without a symbol column
    time_zone: str = "UTC"  # of times without an offset
    time_unit: str = "iso"  # or s, ms, us, ns since the epoch
    timeframe: str = "1m"  # of the bars
    rejects: Path | None = None  # default: <state_dir>/imports/<file name>.rejected.csv


@dataclass
class ImportResult:
    rows: int  # rows read
    imported: int
    rejected: int
    rejects_file: Path | None
    table: str
    symbols: list[str]
    start: datetime | None  # the imported rows' time span, end excluded
    end: datetime | None
    first_rejects: list[tuple[str, str]]  # (where, reason) of the first few


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise UserError(f"{path}: cannot tell the format from {suffix or 'no suffix'!r}: name it .csv or .parquet")


def read_rows(path: Path) -> tuple[list[str], int | None, Iterator[tuple[str, dict]]]:
    """The file's columns, its number of rows if known, and its rows as (where, {column: value})
    with ``where`` a line number of a CSV file or a row number of a Parquet file."""
    if not path.is_file():
        raise UserError(f"there is no file {path}")
    if file_format(path) == "parquet":
        parquet = pq.ParquetFile(path)

        def parquet_rows() -> Iterator[tuple[str, dict]]:
            number = 0
            for batch in parquet.iter_batches(batch_size=10_000):
                for row in batch.to_pylist():
                    number += 1
                    yield f"row {number}", row

        return parquet.schema_arrow.names, parquet.metadata.num_rows, parquet_rows()
    handle = open(path, newline="", encoding="utf-8-sig")
    reader = csv.DictReader(handle)
    columns = reader.fieldnames or []

    def csv_rows() -> Iterator[tuple[str, dict]]:
        with handle:
            for row in reader:
                yield f"line {reader.line_num}", row

    return list(columns), None, csv_rows()


def column_map(what: str, columns: list[str], mapping: dict[str, str], symbol: str | None) -> dict[str, str]:
    """ticklake field -> file column: ``mapping``, else the first alias the file has (any case).
    A UserError names what is missing and what the file has."""
    unknown = sorted(set(mapping) - set(ALIASES[what]))
    if unknown:
        raise UserError(f"--map {', '.join(unknown)}: {what} have the fields {', '.join(ALIASES[what])}")
    absent = sorted(column for column in mapping.values() if column not in columns)
    if absent:
        raise UserError(f"--map names columns the file does not have: {', '.join(absent)}; "
                        f"it has {', '.join(columns)}")
    by_case = {c.lower(): c for c in reversed(columns)}
    found = dict(mapping)
    for name, aliases in ALIASES[what].items():
        if name not in found:
            match = next((by_case[a] for a in aliases if a in by_case and by_case[a] not in found.values()), None)
            if match is not None:
                found[name] = match
    if symbol is not None:
        found.pop("symbol", None)
    missing = [n for n in ALIASES[what] if n not in found and n not in OPTIONAL[what] and not (n == "symbol" and symbol)]
    if missing:
        hint = " (or give --symbol)" if "symbol" in missing else ""
        raise UserError(f"the file has no column for {', '.join(missing)}{hint}: it has {', '.join(columns)}; "
                        "name them with --map FIELD=COLUMN")
    return found


def parse_time(value: object, unit: str, zone: ZoneInfo) -> datetime:
    """A cell as an aware UTC time: ISO text (``zone`` unless it has an offset), a number of
    ``unit`` since the epoch, or a datetime (from Parquet)."""
    if value is None or value == "":
        raise RowError("no time")
    if isinstance(value, datetime):
        moment = value
    elif unit == "iso":
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            hint = "; it looks like a number: give --time-unit" if _is_number(value) else ""
            raise RowError(f"time {value!r} is not an ISO time{hint}") from None
    else:
        try:
            number = float(value) if isinstance(value, str) else value
            ms = number * 1000 / TIME_UNITS[unit]
        except (TypeError, ValueError):
            raise RowError(f"time {value!r} is not a number of {unit} since 1970") from None
        if not math.isfinite(ms) or not 0 < ms <= MAX_TRADE_TIME_MS:
            raise RowError(f"time {value!r} {unit} is out of range")
        return EPOCH + timedelta(microseconds=round(ms * 1000))
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(timezone.utc)


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _number(value: object, name: str, kind=float):
    if value is None or value == "":
        return None
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise RowError(f"{name} {value!r} is not a number") from None
    if kind is int:
        if number != number or int(number) != number:
            raise RowError(f"{name} {value!r} is not a whole number")
        return int(number)
    return float(number)


FINNHUB_NAMES = {"s": "symbol", "p": "price", "v": "volume", "c": "conditions", "t": "trade_ts"}


def _reason(error: ValidationError, names: dict[str, str] | None = None) -> str:
    """The model's complaints in one line, by ticklake's field names."""
    names, reasons = names or {}, []
    for e in error.errors():
        where, message = ".".join(names.get(str(p), str(p)) for p in e["loc"]), e["msg"].removeprefix("Value error, ")
        reasons.append(f"{where}: {message}" if where else message)
    return "; ".join(reasons)


class Converter:
    """One row of the file -> the lake row it stands for, validated (RowError otherwise)."""

    def __init__(self, settings: Settings, options: ImportOptions, columns: dict[str, str]) -> None:
        self.what, self.columns, self.symbol = options.what, columns, options.symbol
        self.unit = options.time_unit
        try:
            self.zone = ZoneInfo(options.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(f"--time-zone {options.time_zone!r} is not a time zone (e.g. UTC, America/New_York)") from None
        self.width = timedelta(seconds=seconds(options.timeframe))
        self.exchange = settings.producer.default_exchange
        self.now = datetime.now(timezone.utc)

    def cell(self, row: dict, name: str) -> object:
        if name == "symbol" and self.symbol is not None:
            return self.symbol
        column = self.columns.get(name)
        return None if column is None else row.get(column)

    def __call__(self, row: dict, number: int) -> dict:
        symbol = self.cell(row, "symbol")
        symbol = symbol.strip() if isinstance(symbol, str) else symbol
        time = parse_time(self.cell(row, TIME_FIELD[self.what]), self.unit, self.zone)
        return self.bar(row, symbol, time) if self.what == "bars" else self.trade(row, symbol, time, number)

    def bar(self, row: dict, symbol: object, start: datetime) -> dict:
        if floor_time(start, self.width) != start:
            raise RowError(f"window_start {start.isoformat()} is not at the start of a {self.width} bar")
        values = {name: _number(self.cell(row, name), name, int if name == "trade_count" else float)
                  for name in ("open", "high", "low", "close", "volume", "trade_count", "vwap")}
        if values["trade_count"] is None:
            values["trade_count"] = 0  # the file does not say
        try:
            bar = Bar.model_validate({"symbol": symbol, "trade_date": utc_day(start), "window_start": start,
                                      "window_end": start + self.width, **values, "updated_at": self.now})
        except ValidationError as error:
            raise RowError(_reason(error)) from None
        return bar.model_dump()

    def trade(self, row: dict, symbol: object, ts: datetime, number: int) -> dict:
        conditions = self.cell(row, "conditions")
        if isinstance(conditions, str):
            text = conditions.strip()
            try:
                conditions = json.loads(text) if text.startswith("[") else [c for c in text.split(";") if c] or None
            except ValueError:
                raise RowError(f"conditions {text!r} are neither a JSON list nor separated by ';'") from None
        price, volume = _number(self.cell(row, "price"), "price"), _number(self.cell(row, "volume"), "volume")
        try:  # the checks of the producer, on the trade as Finnhub would send it
            FinnhubTrade.model_validate({"s": symbol, "p": price, "v": volume, "c": conditions,
                                         "t": int(ts.timestamp() * 1000)})
        except ValidationError as error:
            raise RowError(_reason(error, FINNHUB_NAMES)) from None
        exchange = self.cell(row, "exchange")
        return {"symbol": symbol, "trade_year": ts.year, "trade_month": ts.month, "trade_day": ts.day,
                "trade_ts": ts, "kafka_partition": IMPORTED_PARTITION, "kafka_offset": number, "price": price,
                "volume": volume, "conditions": conditions, "exchange": str(exchange) if exchange else self.exchange,
                "received_at": self.now}


def target_table(settings: Settings, what: str, timeframe: str) -> str:
    if what == "bars" and timeframe != "1m" and timeframe not in settings.iceberg.rollup_tables:
        raise UserError(f"no lake table for {timeframe} bars: 1m, or one of the rolled-up timeframes "
                        f"{', '.join(settings.iceberg.rollup_tables)} (setting iceberg.rollup_tables)")
    return lake_query.table_identifier(settings, what, timeframe)


def import_file(settings: Settings, options: ImportOptions) -> ImportResult:
    """Read, validate and write ``options.file`` into the lake (see the module's docstring)."""
    identifier = target_table(settings, options.what, options.timeframe)
    columns, total, rows = read_rows(options.file)
    convert = Converter(settings, options, column_map(options.what, columns, options.mapping, options.symbol))
    rejects_path = options.rejects or settings.state_dir / "imports" / f"{options.file.name}.rejected.csv"
    good, rejected, first_rejects, seen = [], 0, [], {}
    rejects_file = writer = None
    progress = Progress(total, "rows")
    time_field = TIME_FIELD[options.what]
    number = 0
    try:
        for number, (where, row) in enumerate(rows, start=1):
            try:
                value = convert(row, number)
                if options.what == "bars":
                    key = (value["symbol"], value["window_start"])
                    if key in seen:
                        raise RowError(f"a second bar of {key[0]} at {key[1].isoformat()} (the first is at {seen[key]})")
                    seen[key] = where
                good.append(value)
            except RowError as error:
                rejected += 1
                if writer is None:
                    rejects_path.parent.mkdir(parents=True, exist_ok=True)
                    rejects_file = open(rejects_path, "w", newline="", encoding="utf-8")
                    writer = csv.writer(rejects_file)
                    writer.writerow(["where", "reason", "row"])
                writer.writerow([where, str(error), json.dumps(row, default=str)])
                if len(first_rejects) < 10:
                    first_rejects.append((where, str(error)))
            progress.update(number, f"{rejected} rejected")
    finally:
        progress.finish(f"{rejected} rejected")
        if rejects_file is not None:
            rejects_file.close()
    spans = _spans(good, time_field)
    if good:
        _replace(settings, identifier, options.what, good, spans, time_field)
    start = min((first for first, _ in spans.values()), default=None)
    end = max((last for _, last in spans.values()), default=None)
    width = convert.width if options.what == "bars" else timedelta(microseconds=1)
    return ImportResult(number, len(good), rejected, rejects_path if rejected else None, identifier,
                        sorted(spans), start, end + width if end else None, first_rejects)


def _spans(rows: list[dict], time_field: str) -> dict[str, tuple[datetime, datetime]]:
    spans: dict[str, tuple[datetime, datetime]] = {}
    for row in rows:
        first, last = spans.get(row["symbol"], (row[time_field], row[time_field]))
        spans[row["symbol"]] = (min(first, row[time_field]), max(last, row[time_field]))
    return spans


def _replace(settings: Settings, identifier: str, what: str, rows: list[dict],
             spans: dict[str, tuple[datetime, datetime]], time_field: str) -> None:
    """Replace the table's rows of each symbol in its span (imported trades only) by ``rows``, in one commit."""
    table = lake.catalog(settings).load_table(identifier)
    covered: BooleanExpression | None = None
    for symbol, (first, last) in spans.items():
        span = And(EqualTo("symbol", symbol), And(GreaterThanOrEqual(time_field, first.isoformat()),
                                                  LessThanOrEqual(time_field, last.isoformat())))
        covered = span if covered is None else Or(covered, span)
    if what == "trades":
        covered = And(EqualTo("kafka_partition", IMPORTED_PARTITION), covered)
    with warnings.catch_warnings():  # a first import has nothing to replace, and pyiceberg says so
        warnings.filterwarnings("ignore", "Delete operation did not match any records", UserWarning)
        table.overwrite(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()), overwrite_filter=covered)


def export_file(settings: Settings, what: str, path: Path, symbols: list[str], start: datetime | None,
                end: datetime | None, timeframe: str = "1m", as_of: str | None = None) -> int:
    """Write the lake's bars (of ``timeframe``) or trades of ``symbols`` (all if empty) in
    ``[start, end)`` to ``path`` (CSV or Parquet, columns as an import reads them by default),
    ordered by symbol and time; the number of rows."""
    fmt = file_format(path)
    identifier = lake_query.table_identifier(settings, what, timeframe)
    table = lake_query.load(settings, identifier)
    snapshot = lake_query.snapshot_as_of(table, identifier, lake_query.parse_as_of(as_of)) if as_of else None
    time_field = TIME_FIELD[what]
    row_filter: BooleanExpression = AlwaysTrue()
    if symbols:
        row_filter = And(row_filter, In("symbol", symbols))
    if start:
        row_filter = And(row_filter, GreaterThanOrEqual(time_field, start.isoformat()))
    if end:
        row_filter = And(row_filter, LessThan(time_field, end.isoformat()))
    rows = table.scan(row_filter=row_filter, selected_fields=tuple(EXPORT_COLUMNS[what]),
                      snapshot_id=snapshot.snapshot_id if snapshot else None).to_arrow()
    rows = rows.select(EXPORT_COLUMNS[what]).sort_by([("symbol", "ascending"), (time_field, "ascending")])
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        pq.write_table(rows, path)
    else:
        if what == "trades":  # CSV has no lists: conditions as an import reads them back
            conditions = [";".join(c) if c else None for c in rows.column("conditions").to_pylist()]
            rows = rows.set_column(rows.schema.get_field_index("conditions"), "conditions", pa.array(conditions, pa.string()))
        pa_csv.write_csv(rows, path)
    return rows.num_rows
