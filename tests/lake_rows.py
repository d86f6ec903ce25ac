"""Rows for lake tests, written with pyiceberg (no Spark needed to fill a table)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa


def bar(symbol: str, start: datetime, close: float = 1.5, volume: float = 10.0, **extra) -> dict:
    """A 1-minute ``Bar`` starting at ``start`` (timezone-aware)."""
    return {"symbol": symbol, "trade_date": start.date(), "window_start": start,
            "window_end": start + timedelta(minutes=1), "open": 1.0, "high": max(2.0, close), "low": 0.5,
            "close": close, "volume": volume, "trade_count": 3, "vwap": 1.2 if volume else None,
            "updated_at": start, **extra}


def trade(symbol: str, ts: datetime, offset: int, price: float = 100.0) -> dict:
    """A ``TradeRow`` at ``ts`` with Kafka offset ``offset`` of partition 0."""
    return {"symbol": symbol, "trade_year": ts.year, "trade_month": ts.month, "trade_day": ts.day, "trade_ts": ts,
            "kafka_partition": 0, "kafka_offset": offset, "price": price, "volume": 1.0, "conditions": None,
            "exchange": "US", "received_at": ts}


def arrow(table, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table.schema().as_arrow())


def append(table, rows: list[dict]) -> None:
    table.append(arrow(table, rows))
