"""Parse one Finnhub WebSocket frame into valid trades and dead letters. Pure: no I/O.

Every trade element of a frame ends up either as a ``Trade`` or as a ``DeadLetter`` with a
reason, so counts always reconcile; nothing here raises on any input.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import TypeAdapter, ValidationError

from schemas.models import FinnhubTrade, Trade

# Reasons a dead letter can carry.
OVERSIZED_FRAME = "oversized_frame"
NOT_JSON = "not_json"
BAD_FRAME_SHAPE = "bad_frame_shape"
UNKNOWN_TYPE = "unknown_type"
INVALID_TRADE = "invalid_trade"
IMPLAUSIBLE_TIME = "implausible_time"

MAX_TIME_MS = 2**63 - 1  # a Kafka, Spark and Cassandra long, replays included


_TRADE_LIST = TypeAdapter(list[FinnhubTrade])


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
    trades: list[Trade] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    error_message: str | None = None


@dataclass(frozen=True)
class FrameRules:
    default_exchange: str = "US"
    max_frame_bytes: int = 1 << 20
    # Allowed distance of a trade's time from its receipt; None accepts any time (replays).
    max_clock_skew_ms: int | None = 24 * 3600 * 1000


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
    try:
        checked = [(element, wire) for element, wire in zip(data, _TRADE_LIST.validate_python(data))]
    except ValidationError:  # some element is bad: sort them out one by one
        checked = [(element, None) for element in data]
    for element, wire in checked:
        trade, dead = parse_trade(element, received_time_ms, rules, wire)
        if trade is not None:
            parsed.trades.append(trade)
        else:
            parsed.dead_letters.append(dead)
    return parsed


def parse_trade(element: object, received_time_ms: int, rules: FrameRules,
                wire: FinnhubTrade | None = None) -> tuple[Trade | None, DeadLetter | None]:
    """One element of a trade frame as a ``Trade``, or the dead letter saying why not.
    ``wire`` is the element already validated, when the whole frame passed at once."""
    if wire is None:
        try:
            wire = FinnhubTrade.model_validate(element)
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'trade'}: {e['msg']}" for e in error.errors())
            return None, _dead_letter(element, INVALID_TRADE, problems[:500], received_time_ms)
    if wire.conditions and not _utf8_encodable(wire.conditions):
        return None, _dead_letter(element, INVALID_TRADE, "c: not encodable as UTF-8", received_time_ms)
    if wire.time_ms > MAX_TIME_MS:
        return None, _dead_letter(element, IMPLAUSIBLE_TIME, f"trade time {wire.time_ms} exceeds {MAX_TIME_MS}",
                                  received_time_ms)
    if rules.max_clock_skew_ms is not None and abs(wire.time_ms - received_time_ms) > rules.max_clock_skew_ms:
        message = f"trade time {wire.time_ms} is more than {rules.max_clock_skew_ms} ms from its receipt"
        return None, _dead_letter(element, IMPLAUSIBLE_TIME, message, received_time_ms)
    return Trade.model_construct(  # every field comes from a validated FinnhubTrade
        symbol=wire.symbol, price=wire.price, volume=wire.volume, trade_time_ms=wire.time_ms,
        conditions=wire.conditions, exchange=exchange_of(wire.symbol, rules.default_exchange),
        received_time_ms=received_time_ms,
    ), None


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
