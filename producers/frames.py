"""Parse one Finnhub WebSocket frame into valid trades and dead letters. Pure: no I/O.

Every trade element of a frame ends up either as a ``TradeRecord`` or as a ``DeadLetter`` with
a reason, so counts always reconcile; nothing here raises on any input.

This is the producer's hot path. A well-formed trade frame is validated in one pass by
pydantic-core straight from its JSON text; anything else takes the careful path, which
sorts a frame out element by element.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import orjson
import typing_extensions
from pydantic import TypeAdapter, ValidationError

from schemas.derive import wire_dict
from schemas.models import MAX_TRADE_TIME_MS, FinnhubTrade

# Reasons a dead letter can carry.
OVERSIZED_FRAME = "oversized_frame"
NOT_JSON = "not_json"
BAD_FRAME_SHAPE = "bad_frame_shape"
UNKNOWN_TYPE = "unknown_type"
INVALID_TRADE = "invalid_trade"
IMPLAUSIBLE_TIME = "implausible_time"



_TRADE_FRAME = TypeAdapter(
    typing_extensions.TypedDict("TradeFrame", {"type": Literal["trade"], "data": list[wire_dict(FinnhubTrade)]}))


# A valid, enriched trade: a dict with the fields of ``schemas.models.Trade`` in its order, so
# that ``trade_json`` writes ``Trade``'s JSON, the Kafka value (tests/unit/test_frames.py holds
# the two together). Plain dicts rather than models or objects: building anything per trade
# cost more than everything else the producer does with it.
TradeRecord = dict

# orjson writes the same JSON as ``Trade.model_dump_json`` at a fifth of the cost of the
# standard library; it refuses lone surrogates, which never pass validation.
trade_json = orjson.dumps


@dataclass(frozen=True)
class DeadLetter:
    raw: str
    reason: str
    message: str
    received_time_ms: int

    def to_json(self) -> bytes:
        return json.dumps(
            {"raw": self.raw, "reason": self.reason, "message": self.message,
             "received_time_ms": self.received_time_ms},
            separators=(",", ":"),
        ).encode()


@dataclass
class ParsedFrame:
    kind: str  # "trade", "ping", "error" or "invalid"
    trades: list[TradeRecord] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    error_message: str | None = None


@dataclass(frozen=True)
class FrameRules:
    default_exchange: str = "US"
    max_frame_bytes: int = 1 << 20
    # Allowed distance of a trade's time from its receipt; None accepts any time (replays).
    max_clock_skew_ms: int | None = 24 * 3600 * 1000


@lru_cache(maxsize=4096)
def exchange_of(symbol: str, default: str) -> str:
    prefix, sep, _ = symbol.partition(":")
    return prefix if sep and prefix else default


def _text(raw: str | bytes) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, (bytes, bytearray)) else raw


def parse_frame(raw: str | bytes, received_time_ms: int, rules: FrameRules = FrameRules()) -> ParsedFrame:
    text = _text(raw)

    def rejected(reason: str, message: str, payload: str = text) -> ParsedFrame:
        return ParsedFrame("invalid", dead_letters=[DeadLetter(payload, reason, message, received_time_ms)])

    if len(raw) > rules.max_frame_bytes:
        return rejected(OVERSIZED_FRAME, f"frame of length {len(raw)} exceeds the limit of {rules.max_frame_bytes}",
                        text[: rules.max_frame_bytes])
    try:
        wires = _TRADE_FRAME.validate_json(raw)["data"]
    except ValidationError:
        wires = None  # not a frame of valid trades: sorted out element by element below
    trades = None if wires is None else _enriched(wires, received_time_ms, rules)
    if trades is not None:
        return ParsedFrame("trade", trades=trades)
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError) as error:
        return rejected(NOT_JSON, f"not JSON: {error}")
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return rejected(BAD_FRAME_SHAPE, "a frame is a JSON object with a string 'type'")
    kind = frame["type"]
    if kind == "ping":
        return ParsedFrame("ping")
    if kind == "error":
        return ParsedFrame("error", error_message=str(frame.get("msg", "")))
    if kind != "trade":
        return rejected(UNKNOWN_TYPE, f"unknown frame type {kind[:64]!r}")
    data = frame.get("data")
    if not isinstance(data, list):
        return rejected(BAD_FRAME_SHAPE, "a trade frame has a 'data' list")
    parsed = ParsedFrame("trade")
    for element in data:
        trade, dead = parse_trade(element, received_time_ms, rules)
        if trade is not None:
            parsed.trades.append(trade)
        else:
            parsed.dead_letters.append(dead)
    return parsed


def _enriched(wires: list[dict], received_time_ms: int, rules: FrameRules) -> list[TradeRecord] | None:
    """The trades of a frame that validated as a whole, completed in place, or None when a time
    is out of bounds (the element-by-element path then says which). Strings that came out of
    JSON text are valid UTF-8, so times are all that is left to check."""
    if wires:
        times = [wire["trade_time_ms"] for wire in wires]
        if _time_problem(max(times), received_time_ms, rules) or _time_problem(min(times), received_time_ms, rules):
            return None
    default = rules.default_exchange
    for wire in wires:
        wire["exchange"] = exchange_of(wire["symbol"], default)
        wire["received_time_ms"] = received_time_ms
    return wires


def parse_trade(element: object, received_time_ms: int,
                rules: FrameRules) -> tuple[TradeRecord | None, DeadLetter | None]:
    """One element of a trade frame as a ``TradeRecord``, or the dead letter saying why not."""
    try:
        wire = FinnhubTrade.model_validate(element)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'trade'}: {e['msg']}" for e in error.errors())
        return None, _dead_letter(element, INVALID_TRADE, problems[:500], received_time_ms)
    problem = _problem(wire, received_time_ms, rules)
    if problem is not None:
        return None, _dead_letter(element, *problem, received_time_ms)
    return _enriched([wire.model_dump()], received_time_ms, rules)[0], None


def _problem(wire: FinnhubTrade, received_time_ms: int, rules: FrameRules) -> tuple[str, str] | None:
    """What is wrong with a trade that passed the model, as (reason, message), if anything."""
    if wire.conditions and not _utf8_encodable(wire.conditions):
        return INVALID_TRADE, "c: not encodable as UTF-8"
    return _time_problem(wire.trade_time_ms, received_time_ms, rules)


def _time_problem(time_ms: int, received_time_ms: int, rules: FrameRules) -> tuple[str, str] | None:
    if time_ms > MAX_TRADE_TIME_MS:
        return IMPLAUSIBLE_TIME, f"trade time {time_ms} exceeds {MAX_TRADE_TIME_MS}"
    if rules.max_clock_skew_ms is not None and abs(time_ms - received_time_ms) > rules.max_clock_skew_ms:
        return IMPLAUSIBLE_TIME, f"trade time {time_ms} is more than {rules.max_clock_skew_ms} ms from its receipt"
    return None


def _utf8_encodable(texts: list[str]) -> bool:
    """JSON escapes can make lone surrogates, which pydantic accepts in a str but UTF-8 cannot hold."""
    try:
        "".join(texts).encode()
    except UnicodeEncodeError:
        return False
    return True


def _dead_letter(element: object, reason: str, message: str, received_time_ms: int) -> DeadLetter:
    try:
        raw = json.dumps(element, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        raw = repr(element)
    return DeadLetter(raw, reason, message, received_time_ms)
