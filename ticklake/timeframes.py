"""Bar timeframes as people write them: "1m", "5m", "1h", "1d"."""
from __future__ import annotations

import re

UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
DAY_SECONDS = UNIT_SECONDS["d"]
# The timeframes backtests and charts aggregate 1-minute bars to (ticklake.backtest.resample).
RESAMPLED = ("1m", "5m", "15m", "1h", "1d")


def seconds(timeframe: str) -> int:
    """Length of ``timeframe`` in seconds; ``ValueError`` unless it is N minutes, hours or days."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhd])", timeframe)
    if not match:
        raise ValueError(f"timeframe {timeframe!r} is not a number followed by m, h or d (e.g. 5m, 1h, 1d)")
    return int(match[1]) * UNIT_SECONDS[match[2]]


def pandas_frequency(timeframe: str) -> str:
    """The timeframe as a pandas frequency (fixed length, for flooring UTC times and Timedelta)."""
    return f"{seconds(timeframe)}s"


def rollup_seconds(timeframe: str) -> int:
    """Length of a rollup timeframe: more than a minute, and a whole number of them in a UTC day,
    so rolled-up bars never straddle a day and are built from whole days of 1-minute bars."""
    length = seconds(timeframe)
    if length <= 60 or DAY_SECONDS % length:
        raise ValueError(f"rollup timeframe {timeframe!r} must be longer than 1m and divide a day (5m, 15m, 1h, 4h, 1d)")
    return length
