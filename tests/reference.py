"""An independent, plain-Python computation of 1-minute bars, to check the Spark job against.

It shares nothing with jobs/transforms.py but the definition of a bar (README, "Bars").
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z (README, "Bars")


@dataclass(frozen=True)
class KafkaTrade:
    partition: int
    offset: int
    symbol: str
    price: float
    volume: float
    time_ms: int


def as_trade(partition: int, offset: int, value: bytes | None) -> KafkaTrade | None:
    """The record as a trade, or None if it is not one the pipeline may store."""
    try:
        t = json.loads(value)
        fields = (t["symbol"], t["price"], t["volume"], t["trade_time_ms"], t["received_time_ms"])
    except (ValueError, TypeError, KeyError):
        return None
    symbol, price, volume, time_ms, received_ms = fields
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (price, volume))
    times = all(isinstance(x, int) and not isinstance(x, bool) for x in (time_ms, received_ms))
    if not (isinstance(symbol, str) and symbol and numbers and times):
        return None
    ok = math.isfinite(price) and price > 0 and math.isfinite(volume) and volume >= 0 \
        and 0 < time_ms <= MAX_TIME_MS
    return KafkaTrade(partition, offset, symbol, float(price), float(volume), time_ms) if ok else None


def read_topic(settings, topic: str) -> tuple[list[KafkaTrade], list[tuple[int, int]]]:
    """Every record of ``topic``: the trades, and the (partition, offset) of the others."""
    from ticklake import topics

    trades, others = [], []
    for r in topics.read_topic(settings, topic):
        trade = as_trade(r.partition, r.offset, r.value)
        if trade is None:
            others.append((r.partition, r.offset))
        else:
            trades.append(trade)
    return trades, others


def bars(trades: list[KafkaTrade]) -> dict[tuple[str, int], dict]:
    """(symbol, minute start in epoch ms) -> bar fields."""
    groups: dict[tuple[str, int], list[KafkaTrade]] = {}
    for t in trades:
        groups.setdefault((t.symbol, t.time_ms - t.time_ms % 60_000), []).append(t)
    out = {}
    for key, group in groups.items():
        ordered = sorted(group, key=lambda t: (t.time_ms, t.partition, t.offset))
        volume = sum(t.volume for t in group)
        out[key] = {
            "open": ordered[0].price,
            "high": max(t.price for t in group),
            "low": min(t.price for t in group),
            "close": ordered[-1].price,
            "volume": volume,
            "trade_count": len(group),
            "vwap": sum(t.price * t.volume for t in group) / volume if volume > 0 else None,
        }
    return out
