"""1-minute bar state kept by the streaming job's driver, merged batch by batch (pure Python).

A micro-batch's trades are aggregated by Spark into one ``BarDelta`` per symbol and minute
(``transforms.bar_deltas``). The driver merges each delta into the bar it keeps
(``BarBook``): a cache of the open minutes' bars, filled from the store after a start or for
a trade older than what it holds. So a batch needs no store read, and writes only the bars it
changed.

Exactly once: a bar keeps the Kafka position of its last trade, and a symbol keeps to one
partition, so a trade at or before that position is already in the bar. A delta that may hold
such trades (a batch replayed after a crash, a topic replayed with a new checkpoint) is
refined first: Spark aggregates the batch again without the trades its bars already hold.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol

from ticklake.times import EPOCH

MINUTE_US = 60_000_000
Key = tuple[str, int]  # (symbol, window start in epoch microseconds)


@dataclass(frozen=True, slots=True)
class BarDelta:
    """The trades of one batch in one symbol's minute. Times are epoch microseconds; ``first_*``
    and ``last_*`` the smallest and largest Kafka position (partition, offset) among them."""

    symbol: str
    window_start_us: int
    open: float
    open_ts_us: int
    close: float
    close_ts_us: int
    high: float
    low: float
    volume: float
    trade_count: int
    notional: float  # sum of price x volume
    first_partition: int
    first_offset: int
    last_partition: int
    last_offset: int

    @property
    def key(self) -> Key:
        return self.symbol, self.window_start_us


@dataclass(frozen=True, slots=True)
class BarState:
    """A stored 1-minute bar (the ``MinuteBar`` fields, times in epoch microseconds)."""

    symbol: str
    window_start_us: int
    open: float
    open_ts_us: int | None
    close: float
    close_ts_us: int | None
    high: float
    low: float
    volume: float
    trade_count: int
    notional: float
    last_partition: int | None
    last_offset: int | None

    @property
    def key(self) -> Key:
        return self.symbol, self.window_start_us

    @property
    def vwap(self) -> float | None:
        return self.notional / self.volume if self.volume > 0 else None

    def as_row(self, updated_at: datetime) -> dict:
        """The bar as ``MinuteBar`` fields (aware UTC datetimes)."""
        start = as_datetime(self.window_start_us)
        return {
            "symbol": self.symbol, "trade_date": start.date(), "window_start": start,
            "window_end": as_datetime(self.window_start_us + MINUTE_US),
            "open": self.open, "high": self.high, "low": self.low, "close": self.close, "volume": self.volume,
            "trade_count": self.trade_count, "vwap": self.vwap, "updated_at": updated_at,
            "open_ts": as_datetime(self.open_ts_us), "close_ts": as_datetime(self.close_ts_us),
            "last_kafka_partition": self.last_partition, "last_kafka_offset": self.last_offset,
        }


def as_datetime(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us // 1_000_000, timezone.utc).replace(
        microsecond=us % 1_000_000)


def epoch_us(value: datetime) -> int:
    """Epoch microseconds of an aware datetime, or of a naive one taken as UTC."""
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    delta = aware - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def merge(stored: BarState | None, delta: BarDelta) -> BarState:
    """``stored`` with the delta's trades, which all came after it (see ``needs_refining``).

    An earlier trade becomes the open; the close is the latest trade, the newer one on equal
    times, as in ``transforms.one_minute_bars``."""
    if stored is None:
        return BarState(delta.symbol, delta.window_start_us, delta.open, delta.open_ts_us, delta.close,
                        delta.close_ts_us, delta.high, delta.low, delta.volume, delta.trade_count, delta.notional,
                        delta.last_partition, delta.last_offset)
    opens_earlier = stored.open_ts_us is not None and delta.open_ts_us < stored.open_ts_us
    closes_later = stored.close_ts_us is not None and delta.close_ts_us >= stored.close_ts_us
    return replace(
        stored,
        open=delta.open if opens_earlier else stored.open,
        open_ts_us=delta.open_ts_us if opens_earlier else stored.open_ts_us,
        close=delta.close if closes_later else stored.close,
        close_ts_us=delta.close_ts_us if closes_later else stored.close_ts_us,
        high=max(delta.high, stored.high), low=min(delta.low, stored.low),
        volume=delta.volume + stored.volume, trade_count=delta.trade_count + stored.trade_count,
        notional=delta.notional + stored.notional,
        last_partition=delta.last_partition, last_offset=delta.last_offset,
    )


def needs_refining(stored: BarState | None, delta: BarDelta) -> bool:
    """True when the delta may hold trades the stored bar already has: all its trades must be in
    the bar's partition and after its last offset for the delta to merge as it is."""
    if stored is None or stored.last_offset is None:
        return False
    return not (delta.first_partition == delta.last_partition == stored.last_partition
                and delta.first_offset > stored.last_offset)


class BarStore(Protocol):
    """Where a ``BarBook`` reads the bars it does not hold, and writes the ones that changed."""

    def load(self, keys: Iterable[Key]) -> dict[Key, BarState]: ...

    def write(self, bars: list[BarState]) -> None: ...


# The batch's deltas again, without the trades the given bars already hold.
Refine = Callable[[list[BarState]], list[BarDelta]]


class BarBook:
    """The bars of the last ``keep_minutes`` minutes of trade time, as the store holds them."""

    def __init__(self, store: BarStore, keep_minutes: int) -> None:
        self.store, self.keep_us = store, keep_minutes * MINUTE_US
        self.bars: dict[Key, BarState | None] = {}  # None: the store has no such bar
        self.newest_us: int | None = None

    def apply(self, deltas: list[BarDelta], refine: Refine) -> list[BarState]:
        """Merge a batch's deltas into the bars, write the changed bars, and return them."""
        missing = {d.key for d in deltas} - self.bars.keys()
        if missing:
            found = self.store.load(missing)
            self.bars.update({key: found.get(key) for key in missing})
        stale = [self.bars[d.key] for d in deltas if needs_refining(self.bars[d.key], d)]
        if stale:
            refined = {d.key: d for d in refine(stale)}
            stale_keys = {bar.key for bar in stale}
            deltas = [d for d in deltas if d.key not in stale_keys] + list(refined.values())
        changed = [merge(self.bars[d.key], d) for d in deltas]
        if changed:
            self.store.write(changed)
        self.bars.update((bar.key, bar) for bar in changed)
        self._forget_old(deltas)
        return changed

    def _forget_old(self, deltas: list[BarDelta]) -> None:
        if deltas:
            newest = max(d.window_start_us for d in deltas)
            self.newest_us = newest if self.newest_us is None else max(self.newest_us, newest)
        if self.newest_us is not None:
            horizon = self.newest_us - self.keep_us
            self.bars = {key: bar for key, bar in self.bars.items() if key[1] >= horizon}
