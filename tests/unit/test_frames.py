"""Parsing and validation of every Finnhub frame kind and every rejection reason."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers import frames
from producers.frames import FrameRules, parse_frame
from schemas.models import Trade

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
    assert first == {"symbol": "AAPL", "price": 129.58, "volume": 1, "trade_time_ms": NOW - 5,
                     "conditions": ["1", "12"], "exchange": "US", "received_time_ms": NOW}
    assert second["exchange"] == "BINANCE" and second["volume"] == 0  # v = 0 is a price update, not an error


def test_conditions_are_optional():
    element = good()
    del element["c"]
    assert parse_frame(trade_frame(element), NOW, RULES).trades[0]["conditions"] is None


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
    (good(c=["1", "\udc00"]), frames.INVALID_TRADE),  # a lone surrogate: no UTF-8 for Kafka
    (good(s="A\ud800"), frames.INVALID_TRADE),
    (good(t=NOW - 3_600_000), frames.IMPLAUSIBLE_TIME),
    (good(t=NOW + 3_600_000), frames.IMPLAUSIBLE_TIME),
])
def test_bad_trades_are_dead_letters_and_good_neighbours_pass(element, reason):
    parsed = parse_frame(trade_frame(good(), element, good(p=130.0)), NOW, RULES)
    assert [t["price"] for t in parsed.trades] == [129.58, 130.0]
    (letter,) = parsed.dead_letters
    assert letter.reason == reason
    assert json.loads(letter.raw) == element


def test_non_finite_numbers_are_refused():
    raw = '{"type":"trade","data":[{"s":"A","p":NaN,"t":%d,"v":1},{"s":"A","p":1,"t":%d,"v":Infinity}]}' % (NOW, NOW)
    parsed = parse_frame(raw, NOW, RULES)
    assert not parsed.trades and [d.reason for d in parsed.dead_letters] == [frames.INVALID_TRADE] * 2


def test_replays_keep_their_own_times_but_not_times_beyond_year_9999():
    replay_rules = FrameRules(max_clock_skew_ms=None)
    old = good(t=1_500_000_000_000)
    assert parse_frame(trade_frame(old), NOW, replay_rules).trades[0]["trade_time_ms"] == 1_500_000_000_000
    last = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
    assert parse_frame(trade_frame(good(t=last)), NOW, replay_rules).trades[0]["trade_time_ms"] == last
    for beyond in (last + 1, 2**63):
        (letter,) = parse_frame(trade_frame(good(t=beyond)), NOW, replay_rules).dead_letters
        assert letter.reason == frames.IMPLAUSIBLE_TIME


def test_bytes_frames_and_their_dead_letters():
    assert parse_frame(trade_frame(good()).encode(), NOW, RULES).trades[0]["symbol"] == "AAPL"
    (letter,) = parse_frame(b"\xff\xfe{", NOW, RULES).dead_letters
    assert letter.reason == frames.NOT_JSON and json.loads(letter.to_json())["raw"] == "\ufffd\ufffd{"


def test_exchange_is_the_prefix_before_the_colon():
    assert frames.exchange_of("BINANCE:BTCUSDT", "US") == "BINANCE"
    assert frames.exchange_of("AAPL", "US") == "US"
    assert frames.exchange_of(":X", "US") == "US"


# Text includes lone surrogates: JSON escapes can produce them, and UTF-8 cannot hold them.
texts = st.text(max_size=10) | st.text(st.characters(categories=["Cs", "Ll"]), max_size=3)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)
valid_trade = st.fixed_dictionaries(
    {"s": st.sampled_from(["AAPL", "BINANCE:BTCUSDT"]), "p": st.floats(min_value=0.01, max_value=1e6),
     "t": st.integers(NOW - 60_000, NOW + 60_000), "v": st.sampled_from([0, 1, 2.5])},
    optional={"c": st.lists(texts, max_size=3)},
)


@st.composite
def trade_like(draw) -> dict:
    """A valid trade, or one with a field removed or replaced by anything."""
    trade = draw(valid_trade)
    key = draw(st.sampled_from([None, *trade]))
    if key is not None and draw(st.booleans()):
        del trade[key]
    elif key is not None:
        trade[key] = draw(json_values | texts | st.integers())
    return trade


def assert_writable(parsed: frames.ParsedFrame) -> None:
    """What the producer writes to Kafka serialises: keys and values as UTF-8."""
    for trade in parsed.trades:
        trade["symbol"].encode()
        assert list(trade) == list(Trade.model_fields)
        assert Trade.model_validate_json(frames.trade_json(trade)) == Trade(**trade)
    for letter in parsed.dead_letters:
        json.loads(letter.to_json())


@settings(max_examples=400, deadline=None)
@given(elements=st.lists(trade_like() | json_values, max_size=6), replay=st.booleans())
def test_every_trade_element_is_a_trade_or_a_dead_letter(elements, replay):
    raw = json.dumps({"type": "trade", "data": elements})
    rules = FrameRules(max_frame_bytes=10_000, max_clock_skew_ms=None) if replay else RULES
    parsed = parse_frame(raw, NOW, rules)
    assert_writable(parsed)
    if len(raw) <= RULES.max_frame_bytes:
        assert len(parsed.trades) + len(parsed.dead_letters) == len(elements)
        # The one-pass path for whole valid frames agrees with the element-by-element one.
        one_by_one = [frames.parse_trade(element, NOW, rules) for element in json.loads(raw)["data"]]
        assert parsed.trades == [t for t, _ in one_by_one if t is not None]
        assert [(d.raw, d.reason) for d in parsed.dead_letters] == [(d.raw, d.reason) for _, d in one_by_one if d]


@settings(max_examples=300, deadline=None)
@given(raw=st.text(max_size=200) | st.binary(max_size=200) | json_values.map(json.dumps))
def test_any_frame_parses_without_raising(raw):
    parsed = parse_frame(raw, NOW, RULES)
    assert_writable(parsed)
    assert parsed.kind in {"trade", "ping", "error", "invalid"}
    assert parsed.kind != "invalid" or len(parsed.dead_letters) == 1
