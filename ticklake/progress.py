"""A progress line on stderr for long work: a bar on a terminal, a line every few seconds in logs."""
from __future__ import annotations

import os
import sys
import time


class Progress:
    def __init__(self, total: int | None, unit: str, every_s: float | None = None) -> None:
        self.total, self.unit = total, unit
        # A job run by ticklake writes into a pipe that ends on the terminal (ticklake.logs.RunLog).
        self.tty = os.environ.get("TICKLAKE_STDERR_TTY", "1" if sys.stderr.isatty() else "0") == "1"
        self.every_s = every_s if every_s is not None else (0.2 if self.tty else 5.0)
        self.started = self.last = time.monotonic()
        self.done = 0

    def update(self, done: int, note: str = "") -> None:
        self.done = done
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._show(note)

    def finish(self, note: str = "") -> None:
        self._show(note)
        if self.tty:
            sys.stderr.write("\n")

    def _show(self, note: str) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = f"{self.done / elapsed:,.0f} {self.unit}/s"
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            text = f"[{bar:<30}] {share:4.0%} {self.done:,}/{self.total:,} {self.unit}  {rate}  {note}"
        else:
            text = f"{self.done:,} {self.unit}  {rate}  {note}"
        sys.stderr.write(("\r" + text) if self.tty else (text + "\n"))
        sys.stderr.flush()
