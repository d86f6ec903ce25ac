"""Options of the streaming job's entry point."""
from __future__ import annotations

import pytest

pytest.importorskip("pyspark")
from jobs.ohlcv_stream import QUERIES, parse_args  # noqa: E402


def test_an_application_runs_all_queries_or_the_ones_named_in_their_order():
    assert parse_args([]).queries == QUERIES
    assert parse_args(["--queries", "lake, trades"]).queries == ("trades", "lake")
    assert parse_args(["--queries", "bars"]).queries == ("bars",)


@pytest.mark.parametrize("bad", ["", "bars,candles", ","])
def test_unknown_or_no_queries_are_refused(bad, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--queries", bad])
    assert "comma-separated subset of bars,trades,lake" in capsys.readouterr().err
