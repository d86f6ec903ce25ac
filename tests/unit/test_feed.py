"""The local feed over a loopback WebSocket: protocol, determinism, fault injection, sent log."""
from __future__ import annotations

import asyncio
import json
import math

import websockets

from producers.feed import FeedOptions, FeedServer, running_feed

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
        async with running_feed(settings, host="127.0.0.1", port=0, options=options) as feed:
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
        async with running_feed(settings, host="127.0.0.1", port=0, options=options) as feed:
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
        async with running_feed(settings, host="127.0.0.1", port=0, options=options) as feed:
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
        async with running_feed(settings, host="127.0.0.1", port=0, options=options) as feed:
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
        async with running_feed(settings, host="127.0.0.1", port=0, options=options) as feed:
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
        async with running_feed(settings, host="127.0.0.1", port=0, options=options) as feed:
            async with websockets.connect(feed.url) as socket:
                await subscribe(socket, "AAPL")
                frames = await frames_for(socket, 0.5)
        return feed, frames

    feed, frames = run(scenario())
    assert [frame for frame in frames if frame != '{"type":"ping"}'] == lines
    assert feed.sent == trades_in(lines[0]) + trades_in(lines[2])
