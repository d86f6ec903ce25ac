"""Pydantic models: the single source of truth for every record ticklake moves.

``FinnhubTrade`` is one element of a Finnhub ``trade`` frame, ``Trade`` the validated and
enriched trade written to Kafka, ``TradeRow`` the raw trade as stored, ``Bar`` an OHLCV bar,
``MinuteBar`` a 1-minute bar as the streaming job stores it, ``QuarantinedRecord`` a record the streaming job refused; ``BacktestRun``, ``BacktestTrade`` and
``EquityPoint`` the results of backtests.  Spark, Iceberg and CQL schemas are derived from these in ``schemas.derive``.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from schemas.keys import TableKey

# The latest trade time anything downstream can hold: 9999-12-31T23:59:59.999Z (Python's
# datetime, and with it the query tools, ends there; Spark's microsecond timestamps soon after).
MAX_TRADE_TIME_MS = 253_402_300_799_999

# Printable, without blanks at either end.
SYMBOL_PATTERN = r"^[^\s\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"


class FinnhubTrade(BaseModel):
    """A trade as Finnhub sends it: ``{"s","p","t","v","c"}``.

    Numbers are strict (a JSON number, never a string or a boolean) and finite; all checks
    run inside pydantic-core, which keeps validation off the producer's hot path.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    symbol: str = Field(alias="s", min_length=1, max_length=64, strict=True, pattern=SYMBOL_PATTERN)
    price: float = Field(alias="p", gt=0, strict=True, allow_inf_nan=False)
    volume: float = Field(alias="v", ge=0, strict=True, allow_inf_nan=False)
    trade_time_ms: int = Field(alias="t", gt=0, strict=True)
    conditions: list[StrictStr] | None = Field(default=None, alias="c")


class Trade(BaseModel):
    """The Kafka record value: a validated trade with receipt time and exchange."""

    symbol: str
    price: float
    volume: float
    trade_time_ms: int
    conditions: list[str] | None = None
    exchange: str
    received_time_ms: int


class TradeRow(BaseModel):
    """A raw trade as stored in Cassandra and Iceberg.

    ``(kafka_partition, kafka_offset)`` is the trade's identity: two trades in the same
    millisecond never overwrite each other, and replaying the same offsets overwrites itself.
    """

    cql_key: ClassVar[TableKey] = TableKey(
        partition=("symbol", "trade_year", "trade_month", "trade_day"),
        clustering=(("trade_ts", "DESC"), ("kafka_partition", "ASC"), ("kafka_offset", "ASC")),
    )

    symbol: str
    trade_year: int
    trade_month: int
    trade_day: int
    trade_ts: datetime
    kafka_partition: int
    kafka_offset: int
    price: float
    volume: float
    conditions: list[str] | None = None
    exchange: str
    received_at: datetime


class Bar(BaseModel):
    """One symbol's trades in the UTC interval ``[window_start, window_end)``.

    Validating one (``ticklake import bars`` does) checks what every bar the pipeline makes
    satisfies: positive finite prices with ``low <= open, close <= high``, no negative volume.
    """

    cql_key: ClassVar[TableKey] = TableKey(
        partition=("symbol", "trade_date"), clustering=(("window_start", "DESC"),)
    )

    symbol: str = Field(min_length=1, max_length=64, pattern=SYMBOL_PATTERN)
    trade_date: date
    window_start: datetime
    window_end: datetime
    open: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)
    low: float = Field(gt=0, allow_inf_nan=False)
    close: float = Field(gt=0, allow_inf_nan=False)
    volume: float = Field(ge=0, allow_inf_nan=False)
    trade_count: int = Field(ge=0)
    vwap: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    updated_at: datetime

    @model_validator(mode="after")
    def _consistent(self) -> Bar:
        if not self.low <= min(self.open, self.close) or not max(self.open, self.close) <= self.high:
            raise ValueError(f"open {self.open:g} and close {self.close:g} must lie within low {self.low:g} "
                             f"and high {self.high:g}")
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


class MinuteBar(Bar):
    """A 1-minute bar with what the streaming job needs to merge later trades into it exactly.

    ``open_ts`` and ``close_ts`` are the times of the open and close trades (a later trade
    replaces the open only if it is earlier, the close if it is not earlier).
    ``(last_kafka_partition, last_kafka_offset)`` is the last trade merged: a symbol keeps to
    one partition, so a trade at or before that offset is already in the bar, and replaying
    it changes nothing. Optional so that tables made before them gain them in place.
    """

    open_ts: datetime | None = None
    close_ts: datetime | None = None
    last_kafka_partition: int | None = None
    last_kafka_offset: int | None = None


# What a reader of bars or trades gets from either store: the CLI's rows, the frames of the
# backtest and the chart.
BAR_COLUMNS = ["symbol", "window_start", "open", "high", "low", "close", "volume", "trade_count", "vwap"]
TRADE_COLUMNS = ["symbol", "trade_ts", "price", "volume", "exchange", "kafka_partition", "kafka_offset"]


class QuarantinedRecord(BaseModel):
    """A Kafka record of the trades topic that the streaming job refused, with the reason."""

    topic: str
    kafka_partition: int
    kafka_offset: int
    raw: str | None = None
    reason: str
    quarantined_at: datetime


class BacktestRun(BaseModel):
    """One strategy with one parameter set over one symbol's bars: what it ran on and how it did.

    ``bars_table`` at ``bars_snapshot_id`` restricted to ``[range_start, range_end)`` is exactly the
    data it saw (Iceberg time travel), ``code_version`` the code. Metrics are null where undefined
    (e.g. a profit factor without losing trades); definitions in docs/BACKTESTS.md.
    """

    run_id: str
    sweep_id: str
    rank: int
    created_at: datetime
    strategy: str
    params: str  # JSON object
    symbol: str
    timeframe: str
    range_start: datetime
    range_end: datetime
    first_bar: datetime
    last_bar: datetime
    bars: int
    bars_table: str
    bars_snapshot_id: int
    code_version: str
    cash: float
    commission: float
    slippage: float
    allow_short: bool
    final_equity: float
    total_return: float | None = None
    cagr: float | None = None
    volatility: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    max_drawdown: float | None = None
    calmar: float | None = None
    trades: int
    win_rate: float | None = None
    profit_factor: float | None = None
    exposure: float
    report: str | None = None


class BacktestTrade(BaseModel):
    """A round trip of a run: entry and exit fills at bar opens; ``is_open`` when it was still
    open at the end of the data (then marked to the last close)."""

    run_id: str
    symbol: str
    trade_no: int
    units: float  # positive long, negative short
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    commission: float
    pnl: float
    return_pct: float
    is_open: bool


class EquityPoint(BaseModel):
    """A run's account at one bar's close."""

    run_id: str
    symbol: str
    time: datetime
    close: float
    position: float
    equity: float
    drawdown: float
