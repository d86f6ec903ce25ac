"""A local Finnhub-compatible WebSocket feed: a synthetic market for the demo and the tests.

Speaks Finnhub's protocol (``subscribe``/``unsubscribe`` in, ``trade``/``ping``/``error``
frames out). Prices are per-symbol random walks, rates are bursty, frames carry several
trades, some trades are ``v = 0`` price updates. With ``events_every_minutes`` the market has
events now and then (``MarketEvents``: price shocks, failed rallies, bursts of block trades), so
that the real-time job finds something to alert on. ``FeedOptions.sent_log`` writes every frame
sent, with its connection's number, as NDJSON; a subclass can watch each frame sent (``send``).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import websockets

from ticklake.logs import configure_logging
from ticklake.config import Settings

log = logging.getLogger("ticklake.feed")

CONDITIONS = (["1"], ["1", "12"], ["1", "24", "12"], None)


@dataclass
class FeedOptions:
    rate: float = 200.0  # trades per second, summed over symbols, on average
    max_trades_per_frame: int = 8
    max_trades: int | None = None  # stop sending trades after this many (pings go on)
    max_symbols: int = 50
    ping_every_s: float = 30.0
    drop_every_s: float | None = None  # fault: close each connection after this long
    stall_every_s: float | None = None  # fault: every this long, send nothing (not even pings) ...
    stall_for_s: float = 0.0  # ... for this long
    malformed_ratio: float = 0.0  # fault: this share of frames is not JSON
    error_ratio: float = 0.0  # fault: this share of frames is a Finnhub error frame
    seed: int = 7
    # Market clock: trade times start this many minutes in the past and run `speed` times
    # faster than the wall clock (a demo shows half an hour of bars in seconds).
    history_minutes: float = 0.0
    speed: float = 1.0
    # Replay: send the frames of this recording (one raw frame per line) instead of a synthetic market.
    replay_file: Path | None = None
    sent_log: Path | None = None  # NDJSON, a line per frame sent: {"connection": n, "frame": "<text>"}
    # Market events (MarketEvents) every this many minutes of market time, symbols in turn (0: none).
    events_every_minutes: float = 0.0


@dataclass
class SymbolWalk:
    price: float
    rng: random.Random

    def step(self) -> float:
        self.price = max(0.01, self.price * math.exp(self.rng.gauss(0, 0.0005)))
        return round(self.price, 4)


EVENT_KINDS = ("shock", "rally", "burst")
SHOCK = 0.04  # a price shock: 4 %, up and down in turn
RALLY_PER_MINUTE = 0.03  # a rally: 3 % a minute for three minutes, then 11 % down in the fourth
BURST_VOLUME = 20  # a burst: a minute of trades 20 times their usual volume


@dataclass(frozen=True)
class MarketEvent:
    """One symbol's event from ``start_ms`` of market time on. Its moves are far larger than the
    random walk's minute to minute (about 0.6 % at the demo's rate), so they show in any run:

    - ``shock``: the price steps by ``SHOCK`` (up or down) and stays there;
    - ``rally``: three minutes each closing ``RALLY_PER_MINUTE`` higher, then a minute that gives
      all of it back and one minute's rise more (a failed rally);
    - ``burst``: one minute of block trades, each volume ``BURST_VOLUME`` times its usual.
    """

    kind: str
    symbol: str
    start_ms: int
    up: bool = True
    MINUTES = {"shock": 0, "rally": 4, "burst": 1}

    def over(self, t_ms: int) -> bool:
        return t_ms >= self.start_ms + self.MINUTES[self.kind] * 60_000

    def price_factor(self, t_ms: int) -> float:
        minutes = min(max(0.0, (t_ms - self.start_ms) / 60_000), self.MINUTES[self.kind])
        if self.kind == "shock":
            return 1 + SHOCK if self.up else 1 - SHOCK
        if self.kind == "rally":  # up for three minutes, then down to one minute's rise below the start
            return math.exp(RALLY_PER_MINUTE * (minutes if minutes <= 3 else 3 - 4 * (minutes - 3)))
        return 1.0

    def volume_factor(self, t_ms: int) -> float:
        return BURST_VOLUME if self.kind == "burst" and self.start_ms <= t_ms < self.start_ms + 60_000 else 1.0


@dataclass
class MarketEvents:
    """The k-th event starts at the first whole minute at least ``(k + 1) * every_minutes`` of
    market time after the open, for the k-th symbol in turn (of those subscribed), of kind
    ``EVENT_KINDS[k % 3]``; shocks go up and down in turn. An event over is folded into its
    symbol's walk (a shock's or a rally's lasting move)."""

    every_minutes: float
    open_ms: int
    scheduled: int = 0
    active: list[MarketEvent] = field(default_factory=list)

    def start_of(self, k: int) -> int:
        return math.ceil((self.open_ms + (k + 1) * self.every_minutes * 60_000) / 60_000) * 60_000

    def advance(self, t_ms: int, symbols: list[str], walk) -> None:
        while self.start_of(self.scheduled) <= t_ms:
            k = self.scheduled
            self.active.append(MarketEvent(EVENT_KINDS[k % 3], symbols[k % len(symbols)], self.start_of(k),
                                           up=(k // len(EVENT_KINDS)) % 2 == 0))
            self.scheduled += 1
        for event in [e for e in self.active if e.over(t_ms)]:
            walk(event.symbol).price *= event.price_factor(t_ms)
            self.active.remove(event)

    def factors(self, symbol: str, t_ms: int) -> tuple[float, float]:
        """The price and volume factors of ``symbol``'s events under way at ``t_ms``."""
        price = volume = 1.0
        for event in self.active:
            if event.symbol == symbol:
                price *= event.price_factor(t_ms)
                volume *= event.volume_factor(t_ms)
        return price, volume


@dataclass
class FeedServer:
    options: FeedOptions
    frames_sent: int = 0
    trades_sent: int = 0  # synthetic trades handed to a socket
    malformed_sent: int = 0
    errors_sent: int = 0
    connections: int = 0
    url: str | None = None  # where it listens, once serving

    def __post_init__(self) -> None:
        self.rng = random.Random(self.options.seed)
        self.walks: dict[str, SymbolWalk] = {}
        self.clock_started_s: float | None = None  # the market opens with the first trade
        self.events: MarketEvents | None = None
        self.log = open(self.options.sent_log, "a", buffering=1, encoding="utf-8") if self.options.sent_log else None

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def market_time_ms(self) -> int:
        """Market time: from ``history_minutes`` ago at ``speed``, never ahead of the wall clock.
        With a trade budget the history is spread over the budget instead, so it ends at about
        now however fast the trades are taken."""
        now = time.time()
        history_s = self.options.history_minutes * 60
        if self.clock_started_s is None:
            self.clock_started_s = now
            if self.options.events_every_minutes:
                self.events = MarketEvents(self.options.events_every_minutes, int((now - history_s) * 1000))
        if history_s and self.options.max_trades:
            market = self.clock_started_s - history_s + history_s * self.trades_sent / self.options.max_trades
            market += now - self.clock_started_s
        else:
            market = self.clock_started_s - history_s + (now - self.clock_started_s) * self.options.speed
        return int(min(market, now) * 1000)

    @property
    def exhausted(self) -> bool:
        return self.options.max_trades is not None and self.trades_sent >= self.options.max_trades

    def walk(self, symbol: str) -> SymbolWalk:
        if symbol not in self.walks:
            self.walks[symbol] = SymbolWalk(self.rng.uniform(20, 500), random.Random(f"{self.options.seed}:{symbol}"))
        return self.walks[symbol]

    def trade_frame(self, symbols: list[str]) -> dict:
        """One frame of 1 to ``max_trades_per_frame`` trades of subscribed symbols, within the budget."""
        count = self.rng.randint(1, self.options.max_trades_per_frame)
        if self.options.max_trades is not None:
            count = min(count, self.options.max_trades - self.trades_sent)
        now_ms = self.market_time_ms()
        if self.events is not None:
            self.events.advance(now_ms, symbols, self.walk)
        data = []
        for _ in range(count):
            symbol = self.rng.choice(symbols)
            price, volume = self.walk(symbol).step(), 0 if self.rng.random() < 0.05 else self.rng.choice([1, 2, 5, 10, 100, 0.5])
            if self.events is not None:
                price_factor, volume_factor = self.events.factors(symbol, now_ms)
                price, volume = round(price * price_factor, 4), volume * volume_factor
            trade = {"s": symbol, "p": price, "t": now_ms, "v": volume}
            conditions = self.rng.choice(CONDITIONS)
            if conditions is not None:
                trade["c"] = conditions
            data.append(trade)
        return {"type": "trade", "data": data}

    async def send(self, socket, connection: int, frame: str) -> None:
        await socket.send(frame)
        self.frames_sent += 1
        if self.log is not None:
            self.log.write(json.dumps({"connection": connection, "frame": frame}) + "\n")

    async def handle(self, socket) -> None:
        self.connections += 1
        connection = self.connections
        subscribed: list[str] = []
        listener = asyncio.create_task(self._listen(socket, connection, subscribed))
        opened = time.monotonic()
        last_ping = last_stall = due = opened
        replayed = False
        try:
            while not listener.done():
                if self.options.drop_every_s and time.monotonic() - opened >= self.options.drop_every_s:
                    await socket.close(code=1011, reason="injected drop")
                    return
                if self.options.stall_every_s and time.monotonic() - last_stall >= self.options.stall_every_s:
                    await asyncio.sleep(self.options.stall_for_s)
                    last_stall = time.monotonic()
                if time.monotonic() - last_ping >= self.options.ping_every_s:
                    await self.send(socket, connection, '{"type":"ping"}')
                    last_ping = time.monotonic()
                if self.options.replay_file is not None:
                    if subscribed and not replayed:
                        await self._replay(socket, connection)
                        replayed = True  # sent once; then pings only
                    else:
                        await asyncio.sleep(0.05)
                elif subscribed and not self.exhausted:
                    # Paced against a schedule, so the time spent making and sending frames (and
                    # the event loop's timer granularity) does not lower the rate; after a stall it
                    # catches up at most a second.
                    due = max(due, time.monotonic() - 1.0) + await self._send_trades(socket, connection, subscribed)
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                else:
                    await asyncio.sleep(0.05)
        except websockets.ConnectionClosed:
            pass
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await listener

    async def _send_trades(self, socket, connection: int, symbols: list[str]) -> float:
        """Send one frame; returns the pause that gives the configured rate on average."""
        draw = self.rng.random()
        if draw < self.options.malformed_ratio:
            await self.send(socket, connection, '{"type":"trade","data":[{"s":')
            self.malformed_sent += 1
            return 0.0
        if draw < self.options.malformed_ratio + self.options.error_ratio:
            await self.send(socket, connection, '{"type":"error","msg":"Injected error"}')
            self.errors_sent += 1
            return 0.0
        frame = self.trade_frame(symbols)
        await self.send(socket, connection, json.dumps(frame, separators=(",", ":")))
        self.trades_sent += len(frame["data"])
        # Bursty pacing: exponential gaps whose mean gives the configured rate.
        mean_gap = len(frame["data"]) / max(self.options.rate, 1e-9)
        return self.rng.expovariate(1 / mean_gap) if mean_gap > 1e-4 else 0.0

    async def _replay(self, socket, connection: int) -> None:
        with open(self.options.replay_file, encoding="utf-8") as recording:
            for line in recording:
                frame = line.rstrip("\n")
                await self.send(socket, connection, frame)
                if self.options.rate < 1e9:
                    await asyncio.sleep(1 / self.options.rate)

    async def _listen(self, socket, connection: int, subscribed: list[str]) -> None:
        async for message in socket:
            try:
                request = json.loads(message)
                kind, symbol = request["type"], request["symbol"]
            except (ValueError, KeyError, TypeError):
                kind = symbol = None
            if not isinstance(symbol, str) or kind not in ("subscribe", "unsubscribe"):
                await self.send(socket, connection, '{"type":"error","msg":"Invalid message"}')
            elif kind == "subscribe" and symbol not in subscribed:
                if len(subscribed) >= self.options.max_symbols:
                    await self.send(socket, connection, '{"type":"error","msg":"Subscribing to too many symbols"}')
                else:
                    subscribed.append(symbol)
            elif kind == "unsubscribe" and symbol in subscribed:
                subscribed.remove(symbol)


@contextlib.asynccontextmanager
async def running_feed(settings: Settings, *, host: str | None = None, port: int | None = None,
                       options: FeedOptions | None = None,
                       server: type[FeedServer] = FeedServer) -> AsyncIterator[FeedServer]:
    """The feed (a ``server``), serving while the block runs, at ``feed.url`` (port 0: a free port)."""
    opts = options or FeedOptions(rate=settings.feed.trades_per_second, seed=settings.feed.seed)
    feed = server(opts)
    host = host or settings.feed.host
    try:
        async with websockets.serve(feed.handle, host, settings.feed.port if port is None else port,
                                    max_size=None) as server:
            feed.url = f"ws://{host}:{server.sockets[0].getsockname()[1]}"
            log.info("feed on %s at %.0f trades/s%s", feed.url, opts.rate,
                     f", {opts.max_trades} trades" if opts.max_trades else "")
            yield feed
    finally:
        feed.close()


async def serve(settings: Settings, *, host: str | None = None, port: int | None = None,
                options: FeedOptions | None = None, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> FeedServer:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM when run as a program)."""
    async with running_feed(settings, host=host, port=port, options=options) as feed:
        if ready is not None:
            ready.set()
        await (stop or asyncio.Event()).wait()
    return feed


def run_feed(settings: Settings, **kwargs) -> None:
    configure_logging()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        feed = await serve(settings, stop=stop, **kwargs)
        log.info("feed stopped after %d frames on %d connections", feed.frames_sent, feed.connections)

    asyncio.run(main())
