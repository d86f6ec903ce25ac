"""``ticklake chart``: candles and volume drawn from the lake or Cassandra, checked on the pixels
headless Chromium draws."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests import lake_rows
from tests.browser import runs, screenshot
from ticklake import chart, cli, lake

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
RANGE = ["--start", "2026-11-23T09:30", "--end", "2026-11-23T10:10"]
# Eight 5-minute periods: open and close of each (its first minute opens, its last closes).
PERIODS = [(10, 12), (12, 11), (11, 11.5), (11.5, 14), (14, 13), (13, 13.5), (13.5, 12), (12, 15)]


def minute_rows(symbol: str = "AAPL") -> list[dict]:
    """Five 1-minute bars per period, period k trading 50 * (k + 1) in all."""
    rows = []
    for k, (first, last) in enumerate(PERIODS):
        for m in range(5):
            o = first + (last - first) * m / 5
            c = first + (last - first) * (m + 1) / 5
            rows.append(lake_rows.bar(symbol, T + timedelta(minutes=5 * k + m), close=c, volume=10.0 * (k + 1),
                                      open=o, high=max(o, c) + 0.25, low=min(o, c) - 0.25))
    return rows


def run_chart(monkeypatch, settings, *argv: str) -> int:
    for key, value in settings.as_environment().items():
        monkeypatch.setenv(key, value)
    return cli.main(["chart", "AAPL", *RANGE, *argv])


def test_candles_and_volume_as_chromium_draws_them(lake_settings, monkeypatch, tmp_path, capsys):
    tables = {t.name()[-1]: t for t in lake.ensure_tables(lake_settings)}
    lake_rows.append(tables[lake_settings.iceberg.bars_table], minute_rows() + minute_rows("MSFT")[:3])
    page = tmp_path / "chart.html"
    now = datetime.now(timezone.utc).isoformat()
    assert run_chart(monkeypatch, lake_settings, "--timeframe", "5m", "--as-of", now, "--out", str(page)) == 0
    assert f"chart of 8 5m bars of AAPL: {page}" in capsys.readouterr().err
    text = page.read_text()
    assert "<script" not in text and "src=" not in text and "href=" not in text  # self-contained, nothing fetched

    image = screenshot(page, tmp_path / "chart.png")
    pixels = image.load()

    def colour_runs(colours: set[tuple[int, int, int]]) -> list[tuple[int, int, tuple[int, int, int]]]:
        """Runs of columns that hold one of ``colours``, with the colour of each."""
        hits = [next((pixels[x, y] for y in range(image.height) if pixels[x, y] in colours), None)
                for x in range(image.width)]
        return [(a, b, hits[a]) for a, b in runs([hit is not None for hit in hits])]

    up, down = rgb(chart.UP), rgb(chart.DOWN)
    candles = colour_runs({up, down})
    assert [colour == up for _, _, colour in candles] == [c >= o for o, c in PERIODS]

    def height(x: int, colour) -> int:
        return sum(pixels[x, y] == colour for y in range(image.height))

    # Measured a quarter of the way in, away from the wick: the body spans |close - open|.
    bodies = [height(a + (b - a) // 4, colour) for a, b, colour in candles]
    moves = [abs(c - o) for o, c in PERIODS]
    scale = max(bodies) / max(moves)  # pixels per unit of price
    assert all(abs(body - scale * move) <= 2.5 for body, move in zip(bodies, moves)), (bodies, moves)
    tops = [min(y for y in range(image.height) if pixels[(a + b) // 2, y] == colour) for a, b, colour in candles]
    highs = [max(o, c) for o, c in PERIODS]
    assert tops.index(min(tops)) == highs.index(max(highs))  # the highest high reaches highest

    volumes = colour_runs({rgb(chart.UP_VOLUME), rgb(chart.DOWN_VOLUME)})
    assert len(volumes) == len(PERIODS)
    columns = [height((a + b) // 2, colour) for a, b, colour in volumes]
    assert columns == sorted(columns) and columns[0] < columns[-1]  # volume grows period by period
    assert abs(columns[-1] / columns[0] - 8) < 0.5


def test_no_bars_says_where_it_looked(lake_settings, monkeypatch, capsys):
    lake.ensure_tables(lake_settings)
    assert run_chart(monkeypatch, lake_settings, "--as-of", datetime.now(timezone.utc).isoformat()) == 2
    # An empty table has no snapshot to go back to.
    assert "has no data yet" in capsys.readouterr().err


def test_the_chart_of_cassandra_bars(pipeline_settings, monkeypatch, tmp_path, capsys):
    from ticklake.cql import cassandra_session

    session = cassandra_session(pipeline_settings)
    bars_table = pipeline_settings.cassandra.qualified(pipeline_settings.cassandra.bars_table)
    try:
        insert = session.prepare(
            f"INSERT INTO {bars_table} (symbol, trade_date, window_start, window_end, "
            "open, high, low, close, volume, trade_count, vwap, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        for row in minute_rows()[:12]:
            session.execute(insert, [row[c] for c in ("symbol", "trade_date", "window_start", "window_end", "open",
                                                      "high", "low", "close", "volume", "trade_count", "vwap",
                                                      "updated_at")])
    finally:
        session.cluster.shutdown()
    page = tmp_path / "chart.html"
    assert run_chart(monkeypatch, pipeline_settings, "--out", str(page)) == 0
    text = page.read_text()
    assert text.count('class="candle"') == 12 and text.count('class="volume"') == 12
    assert f"from Cassandra ({pipeline_settings.cassandra.keyspace}." in text


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
