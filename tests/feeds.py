"""The local feed as the tests run it: keeping every trade it sends, to check that each arrived exactly once."""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field

from ticklake.tools.feed import FeedServer


@dataclass
class RecordingFeed(FeedServer):
    sent: list[dict] = field(default_factory=list)  # every trade element handed to a socket, in order

    async def send(self, socket, connection: int, frame: str) -> None:
        await super().send(socket, connection, frame)
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            parsed = json.loads(frame)
            if parsed.get("type") == "trade" and isinstance(parsed.get("data"), list):
                self.sent.extend(parsed["data"])
