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


def test_typed_options_take_the_triggers_left_out_from_the_settings():
    from jobs.ohlcv_stream import StreamOptions, options
    from ticklake.config import Settings

    settings = Settings(spark={"bars_trigger_seconds": 0.5, "trigger_seconds": 4, "lake_trigger_seconds": 30})
    default = options([], settings)
    assert isinstance(default, StreamOptions) and not default.available_now
    assert (default.bars_trigger_seconds, default.trigger_seconds, default.lake_trigger_seconds) == (0.5, 4, 30)
    given = options(["--available-now", "--trigger-seconds", "2", "--queries", "trades"], settings)
    assert (given.available_now, given.trigger_seconds, given.lake_trigger_seconds, given.queries) == (True, 2, 30,
                                                                                                    ("trades",))
    assert (given.starting_offsets, given.max_offsets_per_trigger) == ("earliest", None)
