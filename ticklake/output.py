"""Rows for people and programs: an aligned table, CSV or JSON lines."""
from __future__ import annotations

import csv
import json
import sys
from datetime import date, datetime

SCHEDULE_COLUMNS = ["job", "cron", "next_run", "last_run", "outcome", "exit_code", "command"]
SNAPSHOT_COLUMNS = ["snapshot_id", "committed_at", "operation", "added_records", "total_records"]


FORMATS = ("table", "csv", "json")


def print_rows(rows: list, columns: list[str], fmt: str = "table", header: bool = True) -> None:
    """``table`` for the terminal; ``csv`` with a header, ``json`` one object a line (ISO times, full precision).
    ``header=False`` leaves out the header line (rows printed one by one as they come)."""
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        if header:
            writer.writerow(columns)
        writer.writerows([_plain(getattr(row, c)) for c in columns] for row in rows)
        return
    if fmt == "json":
        for row in rows:
            print(json.dumps({c: _plain(getattr(row, c)) for c in columns}))
        return
    cells = [[_fmt(getattr(row, c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    for line in [columns, *cells] if header else cells:
        print("  ".join(value.rjust(width) for value, width in zip(line, widths)))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, (datetime, date)) else value
