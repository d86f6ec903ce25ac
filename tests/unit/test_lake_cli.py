"""The lake commands check their arguments before any Spark job starts."""
from __future__ import annotations

import pytest

from ticklake import cli


@pytest.mark.parametrize("argv, message", [
    (["maintain", "--table", "nope"], "unknown table nope; the tables are: trades, bars_1m"),
    (["rollup", "--timeframe", "2m"], "unknown timeframe 2m; the timeframes are: 5m, 1h, 1d"),
])
def test_lake_jobs_refuse_unknown_names_before_spark_starts(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
