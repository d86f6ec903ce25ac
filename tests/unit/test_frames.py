"""Parsing and validation of every Finnhub frame kind and every rejection reason."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers import frames
from producers.frames import FrameRules, parse_frame

NOW = 1_700_000_000_000
RULES = FrameRules(default_exchange="US", max_frame_bytes=10_000, max_clock_skew_ms=60_000)


def trade_frame(*elements) -> str:
    return json.dumps({"type": "trade", "data": list(elements)})


def good(**overrides) -> dict:
    return {"s": "AAPL", "p": 129.58, "t": NOW - 5, "v": 1, "c": ["1", "12"], **overrides}


def test_trade_frame_with_several_trades_is_enriched():
    parsed = parse_frame(trade_frame(good(), good(s="BINANCE:BTCUSDT", v=0)), NOW, RULES)
    assert parsed.kind == "trade" and not parsed.dead_letters
    first, second = parsed.trades
    assert (first.symbol, first.price, first.trade_time_ms, first.exchange) == ("AAPL", 129.58, NOW - 5, "US")
    assert first.received_time_ms == NOW and first.conditions == ["1", "12"]
    assert second.exchange == "BINANCE" and second.volume == 0  # v = 0 is a price update, not an error


def test_conditions_are_optional():
    element = good()
    del element["c"]
    assert parse_frame(trade_frame(element), NOW, RULES).trades[0].conditions is None


def test_ping_and_error_frames():
    assert parse_frame('{"type":"ping"}', NOW, RULES).kind == "ping"
    error = parse_frame('{"type":"error","msg":"Subscribing to too many symbols"}', NOW, RULES)
    assert error.kind == "error" and error.error_message == "Subscribing to too many symbols"
    assert not error.dead_letters


@pytest.mark.parametrize("raw, reason", [
    ("not json", frames.NOT_JSON),
    ("[1, 2]", frames.BAD_FRAME_SHAPE),
    ('{"data": []}', frames.BAD_FRAME_SHAPE),
    ('{"type": "trade", "data": {"s": "AAPL"}}', frames.BAD_FRAME_SHAPE),
    ('{"type": "news"}', frames.UNKNOWN_TYPE),
    (json.dumps({"type": "trade", "data": [good()] * 200}), frames.OVERSIZED_FRAME),
])
def test_bad_frames_become_one_dead_letter(raw, reason):
    parsed = parse_frame(raw, NOW, RULES)
    assert parsed.kind == "invalid" and not parsed.trades
    (letter,) = parsed.dead_letters
    assert letter.reason == reason and letter.received_time_ms == NOW and letter.message
    assert json.loads(letter.to_json())["reason"] == reason


@pytest.mark.parametrize("element, reason", [
    (good(s=""), frames.INVALID_TRADE),
    (good(s=" AAPL"), frames.INVALID_TRADE),
    (good(p=0), frames.INVALID_TRADE),
    (good(p=-1.5), frames.INVALID_TRADE),
    (good(p="129.5"), frames.INVALID_TRADE),
    (good(p=True), frames.INVALID_TRADE),
    (good(v=-1), frames.INVALID_TRADE),
    (good(c=[1, 2]), frames.INVALID_TRADE),
    (good(c="1"), frames.INVALID_TRADE),
    (good(t="yesterday"), frames.INVALID_TRADE),
    ({"s": "AAPL", "p": 1.0, "v": 1}, frames.INVALID_TRADE),
    ("AAPL", frames.INVALID_TRADE),
    (good(t=NOW - 3_600_000), frames.IMPLAUSIBLE_TIME),
    (good(t=NOW + 3_600_000), frames.IMPLAUSIBLE_TIME),
])
def test_bad_trades_are_dead_letters_and_good_neighbours_pass(element, reason):
    parsed = parse_frame(trade_frame(good(), element, good(p=130.0)), NOW, RULES)
    assert [t.price for t in parsed.trades] == [129.58, 130.0]
    (letter,) = parsed.dead_letters
    assert letter.reason == reason
    assert json.loads(letter.raw) == element


def test_non_finite_numbers_are_refused():
    raw = '{"type":"trade","data":[{"s":"A","p":NaN,"t":%d,"v":1},{"s":"A","p":1,"t":%d,"v":Infinity}]}' % (NOW, NOW)
    parsed = parse_frame(raw, NOW, RULES)
    assert not parsed.trades and [d.reason for d in parsed.dead_letters] == [frames.INVALID_TRADE] * 2


def test_replays_keep_their_own_times():
    replay_rules = FrameRules(max_clock_skew_ms=None)
    old = good(t=1_500_000_000_000)
    assert parse_frame(trade_frame(old), NOW, replay_rules).trades[0].trade_time_ms == 1_500_000_000_000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)
trade_like = st.fixed_dictionaries(
    {}, optional={"s": st.text(max_size=8) | st.integers(), "p": json_values, "t": st.integers() | json_values,
                  "v": json_values, "c": json_values},
)


@settings(max_examples=400, deadline=None)
@given(elements=st.lists(trade_like | json_values, max_size=6))
def test_every_trade_element_is_a_trade_or_a_dead_letter(elements):
    raw = json.dumps({"type": "trade", "data": elements})
    parsed = parse_frame(raw, NOW, RULES)
    if len(raw) <= RULES.max_frame_bytes:
        assert len(parsed.trades) + len(parsed.dead_letters) == len(elements)


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=200) | st.binary(max_size=200) | json_values.map(json.dumps))
def test_any_frame_parses_without_raising(raw):
    parsed = parse_frame(raw, NOW, RULES)
    assert parsed.kind in {"trade", "ping", "error", "invalid"}
    assert parsed.kind != "invalid" or len(parsed.dead_letters) == 1


def test_more_symbols_than_one_connection_takes_are_refused_at_start(settings):
    from producers.producer import Producer, ProducerOptions
    from ticklake.errors import UserError

    many = settings.model_copy(update={"producer": settings.producer.model_copy(
        update={"symbols": [f"S{i}" for i in range(51)]})})
    with pytest.raises(UserError, match="51 symbols.*at most 50"):
        Producer(many, "ws://127.0.0.1:1", options=ProducerOptions(max_symbols=50))


def test_token_is_redacted_from_urls_in_messages():
    from producers.producer import redact

    assert redact("wss://ws.finnhub.io?token=abc123&x=1") == "wss://ws.finnhub.io?token=***&x=1"


def test_backoff_grows_is_capped_and_jittered():
    import random

    from producers.producer import ProducerOptions, backoff_delay

    options, rng = ProducerOptions(backoff_initial_s=0.5, backoff_max_s=30), random.Random(1)
    delays = [backoff_delay(attempt, options, rng) for attempt in range(12)]
    assert 0.25 <= delays[0] <= 0.5 and all(d <= 30 for d in delays) and delays[-1] >= 15
    assert len({round(backoff_delay(3, options, rng), 6) for _ in range(20)}) > 1
