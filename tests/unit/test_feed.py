"""The local feed over a loopback WebSocket: protocol, determinism, fault injection, sent log."""
from __future__ import annotations

import asyncio
import json
import math
from collections import deque

import websockets

from ticklake.tools.feed import FeedOptions, FeedServer, running_feed
from tests.feeds import RecordingFeed

SYMBOLS = ("AAPL", "BINANCE:BTCUSDT")


def run(scenario):
    return asyncio.run(asyncio.wait_for(scenario, 30))


def trades_in(frame: str) -> list[dict]:
    try:
        parsed = json.loads(frame)
    except ValueError:
        return []
    return parsed["data"] if parsed.get("type") == "trade" else []


def count_trades(frames: list[str]) -> int:
    return sum(len(trades_in(frame)) for frame in frames)


async def subscribe(socket, *symbols: str, kind: str = "subscribe") -> None:
    for symbol in symbols:
        await socket.send(json.dumps({"type": kind, "symbol": symbol}))


async def frames_until(socket, done) -> list[str]:
    frames: list[str] = []
    while not done(frames):
        frames.append(await socket.recv())
    return frames


async def frames_for(socket, seconds: float) -> list[str]:
    frames: list[str] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                frames.append(await socket.recv())
    except TimeoutError:
        return frames


async def frames_until_closed(socket) -> tuple[list[str], int]:
    frames: list[str] = []
    try:
        while True:
            frames.append(await socket.recv())
    except websockets.ConnectionClosed as closed:
        return frames, closed.rcvd.code


def test_trades_only_after_subscribing_only_for_those_symbols_until_max_trades(settings):
    options = FeedOptions(rate=5000, max_trades=300, ping_every_s=0.1, seed=3)

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            async with websockets.connect(feed.url) as socket:
                before = await frames_for(socket, 0.3)
                await subscribe(socket, *SYMBOLS)
                frames = await frames_until(socket, lambda got: count_trades(got) >= 300)
                after = await frames_for(socket, 0.3)
        return feed, before, frames, after

    feed, before, frames, after = run(scenario())
    assert before and {*before} == {'{"type":"ping"}'}
    assert after and {*after} == {'{"type":"ping"}'}  # the budget is spent: pings only
    trades = [trade for frame in frames for trade in trades_in(frame)]
    assert trades == feed.sent and len(trades) == 300
    assert {trade["s"] for trade in trades} == set(SYMBOLS)
    assert max(len(trades_in(frame)) for frame in frames) > 1
    assert any(trade["v"] == 0 for trade in trades) and any("c" in trade for trade in trades)
    for symbol in SYMBOLS:  # a random walk: small steps
        prices = [trade["p"] for trade in trades if trade["s"] == symbol]
        assert max(abs(math.log(b / a)) for a, b in zip(prices, prices[1:])) < 0.01


def test_unsubscribed_symbols_stop_and_too_many_symbols_are_refused(settings):
    options = FeedOptions(rate=5000, max_symbols=2, seed=4)

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            async with websockets.connect(feed.url) as socket:
                await subscribe(socket, *SYMBOLS, "MSFT")
                first = await frames_until(socket, lambda got: count_trades(got) >= 100)
                await subscribe(socket, "AAPL", kind="unsubscribe")
                await socket.send("barrier")  # answered once the unsubscribe is done
                await frames_until(socket, lambda got: got and "Invalid message" in got[-1])
                await socket.recv()  # at most one frame was built before the unsubscribe
                second = await frames_until(socket, lambda got: count_trades(got) >= 100)
        return first, second

    first, second = run(scenario())
    assert '{"type":"error","msg":"Subscribing to too many symbols"}' in first
    assert {trade["s"] for frame in first for trade in trades_in(frame)} == set(SYMBOLS)
    assert {trade["s"] for frame in second for trade in trades_in(frame)} == {"BINANCE:BTCUSDT"}


def test_the_same_seed_sends_the_same_trades(settings):
    async def one_run():
        options = FeedOptions(rate=5000, max_trades=200, seed=5)
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            async with websockets.connect(feed.url) as socket:
                await subscribe(socket, *SYMBOLS)
                await frames_until(socket, lambda got: count_trades(got) >= 200)
        return [(t["s"], t["p"], t["v"], t.get("c")) for t in feed.sent]

    assert run(one_run()) == run(one_run())
    frames = [FeedServer(FeedOptions(seed=5)).trade_frame(list(SYMBOLS)) for _ in range(2)]
    assert frames[0]["data"][0]["p"] == frames[1]["data"][0]["p"]


def test_malformed_and_error_frames_are_injected_and_every_frame_is_logged(settings, tmp_path):
    log = tmp_path / "sent.ndjson"
    options = FeedOptions(rate=5000, max_trades=400, malformed_ratio=0.2, error_ratio=0.1, seed=6, sent_log=log)

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            async with websockets.connect(feed.url) as socket:
                await subscribe(socket, *SYMBOLS)
                frames = await frames_until(socket, lambda got: count_trades(got) >= 400)
        return feed, frames

    feed, frames = run(scenario())
    not_json = [frame for frame in frames if not frame.endswith("}")]
    errors = [frame for frame in frames if frame == '{"type":"error","msg":"Injected error"}']
    assert len(not_json) == feed.malformed_sent > 0 and len(errors) == feed.errors_sent > 0
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [entry["frame"] for entry in logged] == frames and {entry["connection"] for entry in logged} == {1}


def test_connections_are_dropped_on_schedule_and_the_log_says_which_trades_went_where(settings, tmp_path):
    log = tmp_path / "sent.ndjson"
    options = FeedOptions(rate=1000, drop_every_s=0.3, seed=7, sent_log=log)

    async def scenario():
        received = []
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            for _ in range(2):
                async with websockets.connect(feed.url) as socket:
                    await subscribe(socket, *SYMBOLS)
                    received.append(await frames_until_closed(socket))
        return feed, received

    feed, received = run(scenario())
    assert feed.connections == 2 and [code for _, code in received] == [1011, 1011]
    by_connection = {1: [], 2: []}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        by_connection[entry["connection"]].extend(trades_in(entry["frame"]))
    assert [by_connection[1], by_connection[2]] == [
        [trade for frame in frames for trade in trades_in(frame)] for frames, _ in received]
    assert by_connection[1] and by_connection[2] and by_connection[1] + by_connection[2] == feed.sent


def test_a_recording_is_replayed_once_as_it_was(settings, tmp_path):
    recording = tmp_path / "frames.ndjson"
    lines = ['{"type":"trade","data":[{"s":"AAPL","p":1.5,"t":1500000000000,"v":1}]}', "garbage",
             '{"type":"trade","data":[{"s":"X","p":2,"t":1500000000001,"v":0},{"s":"Y","p":3,"t":1,"v":2}]}']
    recording.write_text("\n".join(lines) + "\n")
    options = FeedOptions(rate=1e12, replay_file=recording, ping_every_s=0.1)

    async def scenario():
        async with running_feed(settings, host="127.0.0.1", port=0, server=RecordingFeed, options=options) as feed:
            async with websockets.connect(feed.url) as socket:
                await subscribe(socket, "AAPL")
                frames = await frames_for(socket, 0.5)
        return feed, frames

    feed, frames = run(scenario())
    assert [frame for frame in frames if frame != '{"type":"ping"}'] == lines
    assert feed.sent == trades_in(lines[0]) + trades_in(lines[2])


def market(options: FeedOptions, symbols: list[str]) -> list[dict]:
    """Every trade of a feed that spends its whole budget at once (no socket)."""
    feed, trades = FeedServer(options), []
    while not feed.exhausted:
        frame = feed.trade_frame(symbols)
        feed.trades_sent += len(frame["data"])
        trades += frame["data"]
    return trades


def minute_bars(trades: list[dict], symbol: str) -> list[dict]:
    bars: dict[int, dict] = {}
    for trade in (t for t in trades if t["s"] == symbol):
        bar = bars.setdefault(trade["t"] // 60_000, {"open": trade["p"], "volume": 0.0, "prices": []})
        bar["close"] = trade["p"]
        bar["volume"] += trade["v"]
        bar["prices"].append((trade["t"], trade["p"]))
    return [bars[minute] | {"minute": minute} for minute in sorted(bars)]


def test_market_events_give_shocks_failed_rallies_and_volume_bursts_in_turn():
    """The demo's market (30 minutes, 20,000 trades, an event every 4 minutes): the events'
    moves are far above the random walk's, so each shows whatever the walk does around it."""
    symbols = ["AAPL", "MSFT", "AMZN", "BINANCE:BTCUSDT", "BINANCE:ETHUSDT"]
    plain = market(FeedOptions(max_trades=20_000, history_minutes=30, seed=7), symbols)
    trades = market(FeedOptions(max_trades=20_000, history_minutes=30, seed=7, events_every_minutes=4), symbols)
    assert [t["s"] for t in trades] == [t["s"] for t in plain]  # the same market, events on top

    def biggest_move_in_a_minute(symbol: str) -> float:
        """The largest change of a trade's price against the lowest or highest of the minute before it."""
        window: deque[tuple[int, float]] = deque()
        move = 0.0
        for trade in (t for t in trades if t["s"] == symbol):
            while window and window[0][0] < trade["t"] - 60_000:
                window.popleft()
            if window:
                prices = [p for _, p in window]
                move = max(move, trade["p"] / min(prices) - 1, 1 - trade["p"] / max(prices))
            window.append((trade["t"], trade["p"]))
        return move

    def failed_rallies(symbol: str) -> int:
        bars = minute_bars(trades, symbol)
        return sum(all(b["close"] > b["open"] and b["close"] > a["close"] for a, b in zip(bars[i - 1:i + 2], bars[i:i + 3]))
                   and bars[i + 3]["close"] < bars[i]["open"] for i in range(1, len(bars) - 3))

    def bursts(symbol: str) -> int:
        volumes = [b["volume"] for b in minute_bars(trades, symbol)]
        return sum(volumes[i] > 5 * sum(volumes[i - 5:i]) / 5 for i in range(5, len(volumes)))

    # k-th event for the k-th symbol: AAPL shock (min 4), MSFT rally (8-12), AMZN burst (12), BTC shock (16), ...
    assert biggest_move_in_a_minute("AAPL") > 0.03 and biggest_move_in_a_minute("BINANCE:BTCUSDT") > 0.03
    assert failed_rallies("MSFT") >= 1 and failed_rallies("BINANCE:ETHUSDT") >= 1
    assert bursts("AMZN") == 1 and bursts("AAPL") == 1
    # without events: no such moves or bursts (a failed rally of the walk's own now and then)
    trades = plain
    assert max(biggest_move_in_a_minute(s) for s in symbols) < 0.02
    assert sum(bursts(s) for s in symbols) == 0
