"""Plain-text tables for the terminal."""
from __future__ import annotations

from datetime import datetime

BAR_COLUMNS = ["symbol", "window_start", "open", "high", "low", "close", "volume", "trade_count", "vwap"]
TRADE_COLUMNS = ["symbol", "trade_ts", "price", "volume", "exchange", "kafka_partition", "kafka_offset"]


def print_rows(rows: list, columns: list[str]) -> None:
    print("  ".join(f"{c:>19}" for c in columns))
    for row in rows:
        print("  ".join(f"{_fmt(getattr(row, c)):>19}" for c in columns))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
