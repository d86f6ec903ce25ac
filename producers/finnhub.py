"""Finnhub's trades WebSocket, the venue the producer connects to: what a connection sends after
it opens (one ``subscribe`` message a symbol), how many symbols one connection may take, and
the token its URL carries (``Settings.producer_url``), hidden in every message.

The connection loop (producers.producer) uses only these three; another venue would be a module like this.
"""
from __future__ import annotations

import asyncio
import json
import re

MAX_SYMBOLS = 50  # Finnhub refuses more subscriptions on one connection


async def subscribe(socket, symbols: list[str], spacing_s: float) -> None:
    """Subscribe to each symbol's trades, ``spacing_s`` apart (Finnhub drops bursts of requests)."""
    for symbol in symbols:
        await socket.send(json.dumps({"type": "subscribe", "symbol": symbol}))
        await asyncio.sleep(spacing_s)


def redact(url: str) -> str:
    """``url`` (or a message quoting it) with the token hidden."""
    return re.sub(r"(token=)[^&\s]+", r"\1***", url)
