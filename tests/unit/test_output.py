"""Query output for people and programs, and the CLI's answers to bad input."""
from __future__ import annotations

import csv
import io
import json
from collections import namedtuple
from datetime import datetime, timezone

import pytest

from ticklake.cli import main
from ticklake.output import print_rows

Row = namedtuple("Row", "symbol window_start close vwap")
ROWS = [Row("AAPL", datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc), 129.583333333, None)]
COLUMNS = list(Row._fields)


def test_csv_has_a_header_and_full_precision(capsys):
    print_rows(ROWS, COLUMNS, "csv")
    header, row = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert header == COLUMNS and row == ["AAPL", "2026-11-23T09:30:00+00:00", "129.583333333", ""]


def test_json_is_one_object_a_line(capsys):
    print_rows(ROWS, COLUMNS, "json")
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {"symbol": "AAPL", "window_start": "2026-11-23T09:30:00+00:00",
                                "close": 129.583333333, "vwap": None}


def test_table_is_aligned(capsys):
    print_rows(ROWS, COLUMNS)
    header, row = capsys.readouterr().out.splitlines()
    assert len(header) == len(row) and row.split() == ["AAPL", "2026-11-23", "09:30:00", "129.5833", "None"]


@pytest.mark.parametrize("argv, message", [
    (["--start", "yesterday"], "is not a time"),
    (["--start", "2026-11-23T10:00", "--end", "2026-11-23T09:00"], "is not before --end"),
])
def test_bad_times_get_a_message_not_a_traceback(capsys, argv, message):
    assert main(["query", "bars", "AAPL", *argv]) == 2
    assert message in capsys.readouterr().err
