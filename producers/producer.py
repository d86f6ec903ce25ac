"""A venue's WebSocket (Finnhub: producers.finnhub) -> validation -> Kafka, with reconnects,
backpressure and metrics.

A reader task takes frames off the socket into a bounded queue; a writer task parses them
(producers.frames) and hands trades and dead letters to Kafka. When Kafka slows down or stops
acknowledging, the Kafka client's buffer fills (producer.buffer_records), the writer waits, the
queue fills, the reader stops reading, and the socket's own flow control slows the feed.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from producers import finnhub
from producers.metrics import ProducerMetrics
from producers.sinks import FrameSink, KafkaFrameSink, ProducerStats, RecordingSink, frame_rules
from ticklake.backoff import backoff_seconds, jittered
from ticklake.logs import configure_logging
from ticklake.config import Settings
from ticklake.errors import UserError

log = logging.getLogger("ticklake.producer")


@dataclass
class ProducerOptions:
    max_symbols: int = finnhub.MAX_SYMBOLS
    queue_frames: int = 1_000
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    healthy_after_s: float = 30.0  # a connection this old resets the backoff
    silence_timeout_s: float = 90.0  # no frame this long (pings included): reconnect
    subscribe_spacing_s: float = 0.02
    max_frame_bytes: int = 1 << 20


def backoff_delay(attempt: int, options: ProducerOptions, rng: random.Random) -> float:
    """Capped exponential backoff with full jitter in [delay/2, delay]."""
    return jittered(backoff_seconds(attempt, options.backoff_initial_s, options.backoff_max_s), rng)


class Producer:
    """One WebSocket connection (re-opened as needed) whose frames go to a ``FrameSink``."""

    TICK_SECONDS = 0.01  # metrics and the latency histogram are this current
    # Frames the writer handles from a full queue before the reader gets a turn: a turn of the
    # event loop per frame cost more than the frame's parsing (a millisecond or two of trades).
    FRAMES_PER_TURN = 16

    def __init__(self, settings: Settings, url: str | None = None, *, max_trades: int | None = None,
                 idle_timeout: float | None = None, options: ProducerOptions | None = None,
                 record_to: Path | None = None, replay: bool = False) -> None:
        self.settings = settings
        self.url = url or settings.producer_url()
        self.symbols = list(settings.producer.symbols)
        self.options = options or ProducerOptions()
        if len(self.symbols) > self.options.max_symbols:
            raise UserError(
                f"{len(self.symbols)} symbols configured, but one connection takes at most "
                f"{self.options.max_symbols}; shorten producer.symbols or run several producers"
            )
        self.max_trades = max_trades
        self.idle_timeout = idle_timeout
        self.record_to = record_to
        self.rules = frame_rules(settings, replay=replay, max_frame_bytes=self.options.max_frame_bytes)
        self.metrics = ProducerMetrics()
        self.stopping = asyncio.Event()
        self._rng = random.Random()

    def _sink(self) -> FrameSink:
        if self.record_to is not None:
            return RecordingSink(self.record_to, self.metrics)
        return KafkaFrameSink(self.settings, self.metrics, self.rules)

    async def run(self) -> ProducerStats:
        self.metrics.serve(self.settings)
        sink = self._sink()
        self.stats = sink.stats
        self.last_frame_at = time.monotonic()
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.options.queue_frames)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stopping.set)
        log.info("connecting to %s for %d symbols", finnhub.redact(self.url), len(self.symbols))
        reader = asyncio.create_task(self._read_with_reconnects(queue))
        writer = asyncio.create_task(self._drain(queue, sink))
        ticker = asyncio.create_task(self._tick(sink))
        try:
            # The writer ends early only by failing; reading on would then just fill the queue.
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            if not writer.done():
                await queue.put(None)
            await asyncio.wait({writer})
        finally:
            ticker.cancel()
            await asyncio.to_thread(sink.close)  # everything handed to the sink is delivered or counted
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        for task in (reader, writer):
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
        return self.stats

    async def _read_with_reconnects(self, queue: asyncio.Queue) -> None:
        attempt = 0
        while not self.stopping.is_set():
            connected_at = None
            try:
                async with websockets.connect(
                        self.url, max_size=None, open_timeout=10, close_timeout=1, ping_interval=20, ping_timeout=20,
                        compression="deflate" if self.settings.producer.websocket_compression else None) as socket:
                    connected_at = time.monotonic()
                    self.metrics.connected.set(1)
                    await finnhub.subscribe(socket, self.symbols, self.options.subscribe_spacing_s)
                    await self._read(socket, queue, connected_at)
            except (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError) as error:
                log.warning("connection to %s lost: %s", finnhub.redact(self.url), finnhub.redact(str(error)))
            except InvalidURI as error:
                raise UserError(f"invalid feed URL: {finnhub.redact(str(error))}") from None
            finally:
                self.metrics.connected.set(0)
            if self._stop_if_idle():
                return
            if connected_at is not None and time.monotonic() - connected_at >= self.options.healthy_after_s:
                attempt = 0
            delay = backoff_delay(attempt, self.options, self._rng)
            attempt += 1
            self.stats.reconnects += 1
            self.metrics.reconnects.inc()
            log.info("reconnecting in %.1f s (attempt %d)", delay, attempt)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)

    async def _read(self, socket, queue: asyncio.Queue, connected_at: float) -> None:
        """Frames into the queue until stopped; a silence raises ``TimeoutError`` (reconnect).

        Only the wait for a frame is ever cut short (websockets loses nothing when ``recv`` is
        cancelled), never the hand-over of a received frame to the queue.
        """
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Timeout] = []  # the deadline of the recv in progress, if any

        async def cut_short_when_stopping() -> None:
            await self.stopping.wait()
            for deadline in waiting:
                deadline.reschedule(loop.time())

        watcher = asyncio.create_task(cut_short_when_stopping())
        try:
            while not self.stopping.is_set():
                try:
                    async with asyncio.timeout(self._read_timeout(connected_at)) as deadline:
                        waiting.append(deadline)
                        try:
                            raw = await socket.recv()
                        finally:
                            waiting.clear()
                except TimeoutError:
                    if self._stop_if_idle():
                        return
                    silent = time.monotonic() - max(self.last_frame_at, connected_at)
                    if silent >= self.options.silence_timeout_s:
                        raise TimeoutError(f"no frame for {silent:.1f} s") from None
                    continue
                self.last_frame_at = time.monotonic()
                await queue.put((raw, int(time.time() * 1000)))
                self.metrics.queue_depth.set(queue.qsize())
        finally:
            watcher.cancel()

    def _stop_if_idle(self) -> bool:
        """No frame for ``idle_timeout``, connected or not: the feed is done."""
        if self.idle_timeout and time.monotonic() - self.last_frame_at >= self.idle_timeout:
            log.info("no frames for %.1f s: stopping", self.idle_timeout)
            self.stopping.set()
        return self.stopping.is_set()

    def _read_timeout(self, connected_at: float) -> float:
        """Until the silence watchdog (counted from this connection's start) or the idle limit."""
        now = time.monotonic()
        limits = [self.options.silence_timeout_s - (now - max(self.last_frame_at, connected_at))]
        if self.idle_timeout:
            limits.append(self.idle_timeout - (now - self.last_frame_at))
        return max(0.05, min(limits))

    async def _drain(self, queue: asyncio.Queue, sink: FrameSink) -> None:
        handled = 0
        while (item := await queue.get()) is not None:
            self.metrics.queue_depth.set(queue.qsize())
            sink.handle(*item)
            if self.max_trades is not None and self.stats.trades_sent >= self.max_trades:
                self.stopping.set()
            handled += 1
            if not sink.has_room():
                await self._wait_for_room(sink)
            elif not handled % self.FRAMES_PER_TURN:
                await asyncio.sleep(0)  # let the reader and the ticker run

    async def _wait_for_room(self, sink: FrameSink) -> None:
        """Backpressure: Kafka does not acknowledge (brokers away, too few replicas in sync), so
        frames wait in the queue, then in the socket, while the event loop goes on serving pings
        and the ticker (which serves the client's reports). The wait is counted as it goes."""
        while not sink.has_room():
            began = time.monotonic()
            await asyncio.sleep(self.TICK_SECONDS)
            self.metrics.backpressure_seconds.inc(time.monotonic() - began)

    async def _tick(self, sink: FrameSink) -> None:
        """Brings metrics up to date, and serves Kafka's failure reports, between frames."""
        while True:
            await asyncio.sleep(self.TICK_SECONDS)
            sink.tick()


async def run_producer(settings: Settings, *, url: str | None = None, max_trades: int | None = None,
                       idle_timeout: float | None = None, options: ProducerOptions | None = None,
                       record_to: Path | None = None, replay: bool = False) -> ProducerStats:
    """Produce until SIGINT/SIGTERM, ``max_trades`` trades, or ``idle_timeout`` seconds without a frame.
    ``replay`` turns the clock-skew check off, for a feed serving a recording."""
    producer = Producer(settings, url, max_trades=max_trades, idle_timeout=idle_timeout, options=options,
                        record_to=record_to, replay=replay)
    return await producer.run()


def run_producer_sync(settings: Settings, **kwargs) -> ProducerStats:
    configure_logging()
    return asyncio.run(run_producer(settings, **kwargs))
