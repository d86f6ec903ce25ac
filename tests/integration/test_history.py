"""``ticklake import`` and ``ticklake export`` on a real lake (and, for trades, the rebuild of their
bars by the Spark job into Cassandra and the lake)."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.stores import cassandra_bars, lake_rows
from ticklake import cli, lake

pytestmark = pytest.mark.integration

# A vendor's file: its own column names, New York times without an offset.
VENDOR_BARS = """Date,Open,High,Low,Last,Volume
2026-11-23 09:30:00,10,11,9.5,10.5,100
2026-11-23 09:31:00,10.5,11.5,10,11,200
2026-11-23 09:32:00,11,10,9,10,50
2026-11-23 09:33:00,10,10.5,9.5,,70
2026-11-23 09:31:00,10.5,11.5,10,11,200
2026-11-23 09:34:00,10,10.5,9.5,10.25,80
"""


def ticklake(monkeypatch, settings, *argv: str) -> int:
    for key, value in settings.as_environment().items():
        monkeypatch.setenv(key, value)
    return cli.main(list(argv))


def test_vendor_bars_in_with_the_bad_rows_reported_and_out_again(lake_settings, monkeypatch, tmp_path, capsys):
    lake.ensure_tables(lake_settings)
    source, rejects = tmp_path / "vendor.csv", tmp_path / "rejected.csv"
    source.write_text(VENDOR_BARS)
    argv = ["import", "bars", str(source), "--symbol", "AAPL", "--map", "close=Last",
            "--time-zone", "America/New_York", "--rejects", str(rejects)]
    assert ticklake(monkeypatch, lake_settings, *argv) == 1  # some rows were refused
    err = capsys.readouterr().err
    assert "rejected line 4: open 11 and close 10 must lie within low 9 and high 10" in err
    assert "rejected line 5: close: Input should be a valid number" in err
    assert "rejected line 6: a second bar of AAPL at 2026-11-23T14:31:00+00:00 (the first is at line 3)" in err
    assert f"imported 3 of 6 bars into {lake_settings.iceberg.namespace}.{lake_settings.iceberg.bars_table}; " \
           f"3 rejected, all in {rejects}" in err
    with open(rejects, newline="") as f:
        assert [row["where"] for row in csv.DictReader(f)] == ["line 4", "line 5", "line 6"]
    bars = sorted(lake_rows(lake_settings, lake_settings.iceberg.bars_table), key=lambda r: r["window_start"])
    assert [(r["window_start"].isoformat(), r["close"], r["volume"]) for r in bars] == [
        ("2026-11-23T14:30:00+00:00", 10.5, 100.0), ("2026-11-23T14:31:00+00:00", 11.0, 200.0),
        ("2026-11-23T14:34:00+00:00", 10.25, 80.0)]
    assert all(r["trade_date"].isoformat() == "2026-11-23" and r["window_end"] - r["window_start"] == timedelta(minutes=1)
               for r in bars)

    # Again: the same bars replace themselves, nothing doubles.
    assert ticklake(monkeypatch, lake_settings, *argv) == 1
    assert len(lake_rows(lake_settings, lake_settings.iceberg.bars_table)) == 3

    for name in ("bars.csv", "bars.parquet"):  # out and back in: the same bars
        exported = tmp_path / name
        assert ticklake(monkeypatch, lake_settings, "export", "bars", str(exported), "--symbol", "AAPL") == 0
        assert f"exported 3 bars to {exported}" in capsys.readouterr().err
        assert ticklake(monkeypatch, lake_settings, "import", "bars", str(exported)) == 0
        again = sorted(lake_rows(lake_settings, lake_settings.iceberg.bars_table), key=lambda r: r["window_start"])
        assert [{k: r[k] for k in ("symbol", "window_start", "open", "high", "low", "close", "volume")} for r in again] \
            == [{k: r[k] for k in ("symbol", "window_start", "open", "high", "low", "close", "volume")} for r in bars]


def test_trades_in_from_parquet_and_their_bars_rebuilt(pipeline_settings, monkeypatch, tmp_path, capsys):
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=2)
    ms = [int((start + timedelta(seconds=s)).timestamp() * 1000) for s in (0, 10, 20, 70, 80)]
    source = tmp_path / "trades.parquet"
    pq.write_table(pa.table({"ticker": ["AAPL"] * 5 + ["MSFT"], "t": ms + [ms[0]],
                             "p": [10.0, 12.0, 11.0, 20.0, 19.0, -1.0], "size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}), source)
    argv = ["import", "trades", str(source), "--time-unit", "ms", "--rejects", str(tmp_path / "rejected.csv")]
    assert ticklake(monkeypatch, pipeline_settings, *argv) == 1
    err = capsys.readouterr().err
    assert "rejected row 6: price: Input should be greater than 0" in err
    assert "imported 5 of 6 trades" in err and "rebuilding the 1-minute bars of AAPL" in err
    trades = lake_rows(pipeline_settings, pipeline_settings.iceberg.trades_table)
    assert sorted((t["kafka_partition"], t["kafka_offset"], t["price"]) for t in trades) == [
        (-1, 1, 10.0), (-1, 2, 12.0), (-1, 3, 11.0), (-1, 4, 20.0), (-1, 5, 19.0)]
    bars = cassandra_bars(pipeline_settings, ["AAPL"], start, start + timedelta(minutes=5))
    assert [(b["open"], b["high"], b["low"], b["close"], b["volume"], b["trade_count"])
            for _, b in sorted(bars.items())] == [(10.0, 12.0, 10.0, 11.0, 6.0, 3), (20.0, 20.0, 19.0, 19.0, 9.0, 2)]
    lake_bars = lake_rows(pipeline_settings, pipeline_settings.iceberg.bars_table)
    assert sorted((b["open"], b["close"]) for b in lake_bars) == [(10.0, 11.0), (20.0, 19.0)]
