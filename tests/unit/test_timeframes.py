"""Timeframes as people write them, one module for all their uses."""
from __future__ import annotations

import pandas as pd
import pytest

from ticklake.timeframes import RESAMPLED, pandas_frequency, rollup_seconds, seconds


def test_lengths_and_pandas_frequencies():
    assert [seconds(t) for t in RESAMPLED] == [60, 300, 900, 3600, 86400]
    assert [pd.Timedelta(pandas_frequency(t)) for t in ("5m", "1d")] == [pd.Timedelta(minutes=5), pd.Timedelta(days=1)]
    times = pd.DatetimeIndex(["2026-11-23T09:37:12Z"])
    assert times.floor(pandas_frequency("1d"))[0] == pd.Timestamp("2026-11-23T00:00Z")
    assert times.floor(pandas_frequency("15m"))[0] == pd.Timestamp("2026-11-23T09:30Z")


@pytest.mark.parametrize("text", ["0m", "5s", "m", "1.5h"])
def test_anything_else_is_refused(text):
    with pytest.raises(ValueError, match="not a number followed by m, h or d"):
        seconds(text)


def test_rollups_divide_a_day():
    assert rollup_seconds("4h") == 14400
    with pytest.raises(ValueError, match="must be longer than 1m and divide a day"):
        rollup_seconds("7m")
