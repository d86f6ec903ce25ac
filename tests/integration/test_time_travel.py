"""``ticklake query ... --as-of``: the lake as it was at a time or a snapshot, on real commits."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from pyiceberg.expressions import EqualTo

from tests import lake_rows
from tests.lake_rows import arrow
from ticklake import cli, lake

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
RANGE = ["--start", "2026-11-23T09:00", "--end", "2026-11-23T10:00"]


def bar(minute: int, close: float, symbol: str = "AAPL") -> dict:
    return lake_rows.bar(symbol, T + timedelta(minutes=minute), close)


def trade(offset: int) -> dict:
    return lake_rows.trade("AAPL", T + timedelta(seconds=offset), offset, price=100.0 + offset)


def ticklake(monkeypatch, capsys, settings, *argv: str) -> tuple[int, list[list[str]], str]:
    for key, value in settings.as_environment().items():
        monkeypatch.setenv(key, value)
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, [line.split() for line in out.splitlines()[1:]], err


def instant() -> str:
    """Now, between two commits: the clock moves on before and after."""
    time.sleep(0.02)
    now = datetime.now(timezone.utc).isoformat()
    time.sleep(0.02)
    return now


@pytest.fixture
def history(lake_settings):
    """Three commits to bars and one to trades; the times between them and the snapshot ids."""
    tables = {t.name()[-1]: t for t in lake.ensure_tables(lake_settings)}
    bars, trades = tables[lake_settings.iceberg.bars_table], tables[lake_settings.iceberg.trades_table]
    before_all = instant()
    bars.append(arrow(bars, [bar(0, 1.5)]))
    first = bars.current_snapshot().snapshot_id
    after_first = instant()
    bars.append(arrow(bars, [bar(1, 1.7), bar(1, 9.0, symbol="MSFT")]))
    second = bars.current_snapshot().snapshot_id
    trades.append(arrow(trades, [trade(0), trade(1)]))
    after_second = instant()
    bars.overwrite(arrow(bars, [bar(0, 1.6)]),
                   overwrite_filter=EqualTo("symbol", "AAPL") & EqualTo("window_start", T.isoformat()))
    trades.append(arrow(trades, [trade(2)]))
    return {"before_all": before_all, "after_first": after_first, "after_second": after_second,
            "first": first, "second": second}


def closes(rows) -> list[tuple[str, str]]:
    return [(row[2], row[6]) for row in rows]  # window_start's time, close


def test_bars_as_of_a_time_and_a_snapshot(lake_settings, history, monkeypatch, capsys):
    run = lambda *argv: ticklake(monkeypatch, capsys, lake_settings, "query", "bars", "AAPL", *RANGE, *argv)  # noqa: E731
    code, rows, _ = run("--as-of", history["after_first"])
    assert code == 0 and closes(rows) == [("09:30:00", "1.5000")]
    code, rows, _ = run("--as-of", str(history["second"]))
    assert code == 0 and closes(rows) == [("09:31:00", "1.7000"), ("09:30:00", "1.5000")]
    code, rows, _ = run("--as-of", datetime.now(timezone.utc).isoformat())
    assert code == 0 and closes(rows) == [("09:31:00", "1.7000"), ("09:30:00", "1.6000")]


def test_trades_as_of_a_time_with_limit(lake_settings, history, monkeypatch, capsys):
    code, rows, _ = ticklake(monkeypatch, capsys, lake_settings, "query", "trades", "AAPL", *RANGE,
                             "--as-of", history["after_second"])
    assert code == 0 and [row[-1] for row in rows] == ["1", "0"]  # kafka_offset, newest first
    code, rows, _ = ticklake(monkeypatch, capsys, lake_settings, "query", "trades", "AAPL", *RANGE,
                             "--as-of", datetime.now(timezone.utc).isoformat(), "--limit", "1")
    assert code == 0 and [row[-1] for row in rows] == ["2"]


def test_before_the_first_snapshot_and_unknown_ids_are_clear_errors(lake_settings, history, monkeypatch, capsys):
    code, rows, err = ticklake(monkeypatch, capsys, lake_settings, "query", "bars", "AAPL", *RANGE,
                               "--as-of", history["before_all"])
    assert code == 2 and rows == []
    assert "no snapshot at or before" in err and "it has 4 snapshots" in err  # the overwrite is a delete and an append
    code, _, err = ticklake(monkeypatch, capsys, lake_settings, "query", "bars", "AAPL", *RANGE,
                            "--as-of", "12345")
    assert code == 2 and "has no snapshot 12345" in err and "ticklake snapshots" in err
    code, _, err = ticklake(monkeypatch, capsys, lake_settings, "query", "bars", "AAPL", *RANGE,
                            "--as-of", "noon")
    assert code == 2 and "neither a snapshot id nor an ISO time" in err


def test_snapshots_lists_ids_for_as_of(lake_settings, history, monkeypatch, capsys):
    code, rows, _ = ticklake(monkeypatch, capsys, lake_settings, "snapshots", "bars")
    assert code == 0
    assert [int(row[0]) for row in rows][:2] == [history["first"], history["second"]]
    assert [row[3] for row in rows] == ["append", "append", "delete", "append"]
