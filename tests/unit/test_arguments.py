"""The CLI refuses input it cannot answer sensibly, with a message, before any work starts."""
from __future__ import annotations

import argparse
import re
from datetime import datetime, timezone

import pytest

from ticklake import arguments
from ticklake.cli import main
from ticklake.errors import UserError


@pytest.mark.parametrize("argv, message", [
    (["query", "trades", "AAPL", "--limit", "-5"], "argument --limit: must be 1 or more, not -5"),
    (["query", "trades", "AAPL", "--limit", "0"], "argument --limit: must be 1 or more, not 0"),
    (["query", "bars", ""], "a symbol cannot be empty"),
    (["query", "bars", "  "], "a symbol cannot be empty"),
    (["rollup", "--symbol", ""], "a symbol cannot be empty"),
    (["rollup", "--days", "0"], "argument --days: must be 1 or more, not 0"),
    (["backtest", "--strategy", "sma_crossover", "--symbol", "", "--start", "2026-11-01", "--end", "2026-11-02"],
     "a symbol cannot be empty"),
    (["backtest", "--strategy", "sma_crossover", "--symbol", "AAPL", "--start", "yesterday", "--end", "now"],
     "'yesterday' is not a time: use ISO"),
    (["chart", ""], "a symbol cannot be empty"),
    (["export", "bars", "out.csv", "--symbol", " "], "a symbol cannot be empty"),
    (["import", "bars", "in.csv", "--symbol", ""], "a symbol cannot be empty"),
    (["demo", "--trades", "0"], "argument --trades: must be 1 or more, not 0"),
    (["demo", "--trades", "-5"], "argument --trades: must be 1 or more, not -5"),
])
def test_bad_values_are_refused_by_the_parser_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["query", "bars", "AAPL", "--start", "2026-11-23T10:00:00.123456", "--end", "2026-11-23T10:00:00.123456"],
    ["query", "trades", "AAPL", "--start", "2026-11-23T10:00:00.123456", "--end", "2026-11-23T09:00"],
    ["rollup", "--start", "2026-11-23T10:00:00.123456", "--end", "2026-11-23T10:00:00.123456"],
    ["chart", "AAPL", "--start", "2026-11-23T10:00:00.123456", "--end", "2026-11-23T10:00:00.123456"],
    ["export", "bars", "out.csv", "--start", "2026-11-23T10:00:00.123456", "--end", "2026-11-23T10:00:00.123456"],
    ["backtest", "--strategy", "sma_crossover", "--symbol", "AAPL", "--start", "2026-11-23T10:00:00.123456",
     "--end", "2026-11-23T10:00:00.123456"],
])
def test_an_empty_range_is_refused_with_times_to_the_second(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: empty range: --start 2026-11-23T10:00:00+00:00 is not before --end 2026-11-23T" in err
    assert ".123456" not in err and "spark-submit" not in err


def test_a_range_ends_after_it_starts():
    start = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
    arguments.check_range(start, start.replace(second=1))
    with pytest.raises(UserError, match=re.escape("--start 2026-11-23T09:00:00+00:00 is not before")):
        arguments.check_range(start, start)


@pytest.mark.parametrize("text, expected", [(" AAPL ", "AAPL"), ("BINANCE:BTCUSDT", "BINANCE:BTCUSDT")])
def test_symbols_lose_surrounding_blanks(text, expected):
    assert arguments.symbol(text) == expected


@pytest.mark.parametrize("text, message", [("x", "'x' is not a whole number"), ("-1", "not -1")])
def test_positive_says_what_is_wrong(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        arguments.positive(text)
