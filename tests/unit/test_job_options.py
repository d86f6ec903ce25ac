"""The batch jobs' typed options (jobs/options.py): one declaration for the job and the CLI."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone

import pytest

from jobs.options import BacktestOptions, MaintainOptions, RebuildOptions, RollupOptions
from ticklake.config import Settings
from ticklake.errors import UserError

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=timezone.utc)


def parse(options_type, argv: list[str], **kwargs):
    parser = argparse.ArgumentParser()
    settings = Settings()
    options_type.add_arguments(parser, settings)
    return options_type.from_args(settings, parser.parse_args(argv), **kwargs)


def test_a_rollup_defaults_to_two_days_up_to_now_and_every_timeframe():
    options = parse(RollupOptions, [], now=NOW)
    assert (options.start, options.end) == (datetime(2026, 11, 22, tzinfo=timezone.utc), NOW)
    assert options.timeframes == list(Settings().iceberg.rollup_tables) and options.symbols == []
    assert parse(RollupOptions, ["--days", "1"], now=NOW).start == datetime(2026, 11, 23, tzinfo=timezone.utc)


@pytest.mark.parametrize("options_type, argv", [
    (RollupOptions, ["--start", "2026-11-01T09:00", "--end", "2026-11-02", "--timeframe", "1h", "--symbol", "AAPL"]),
    (RebuildOptions, ["--start", "2026-11-01T09:00", "--end", "2026-11-01T10:00", "--symbol", "A", "--symbol", "B"]),
    (MaintainOptions, ["--table", "bars_1m"]),
])
def test_what_the_cli_hands_on_the_job_parses_back_the_same(options_type, argv):
    options = parse(options_type, argv)
    assert parse(options_type, options.to_argv()) == options


@pytest.mark.parametrize("options_type, argv, message", [
    (RollupOptions, ["--timeframe", "2m"], "unknown timeframe 2m"),
    (RollupOptions, ["--start", "2026-11-02", "--end", "2026-11-02"], "empty range"),
    (RebuildOptions, ["--start", "2026-11-02T10:00", "--end", "2026-11-02T09:00"], "empty range"),
    (MaintainOptions, ["--table", "nope"], "unknown table nope"),
])
def test_bad_options_are_refused_before_spark(options_type, argv, message):
    with pytest.raises(UserError, match=message):
        parse(options_type, argv)


def test_days_must_be_positive():
    with pytest.raises(SystemExit):
        parse(RollupOptions, ["--days", "0"])


def test_a_backtest_hands_on_its_request_and_the_jobs_own_options(tmp_path, monkeypatch):
    """``ticklake backtest`` and jobs/backtest.py parse one declaration (the lake's checks aside)."""
    from ticklake.backtest import store

    monkeypatch.setattr(store, "check", lambda settings, asked: store.CheckedRequest(asked, "market.bars_1m", 7, []))
    argv = ["--strategy", "sma_crossover", "--symbol", "AAPL", "--start", "2026-11-01", "--end", "2026-11-02",
            "--param", "fast=3,5", "--chunks", "3", "--summary", str(tmp_path / "sweep.json")]
    options = parse(BacktestOptions, argv)
    assert (options.chunks, options.summary, options.checked.request.symbols) == (3, tmp_path / "sweep.json", ["AAPL"])
    assert parse(BacktestOptions, options.to_argv()) == options
    assert "--chunks" not in parse(BacktestOptions, argv[:-4]).to_argv()
