"""Checks of command-line values, shared by the CLI and the jobs' own parsers: argparse types
whose errors say what is accepted (argparse shows the message of an ``ArgumentTypeError``; of a
``ValueError`` it shows only "invalid ... value"), and the check of a time range."""
from __future__ import annotations

import argparse
from datetime import datetime

from ticklake.errors import UserError
from ticklake.times import parse_time, shown


def time(text: str) -> datetime:
    """An ISO or ``now-...`` time (``ticklake.times.parse_time``)."""
    try:
        return parse_time(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def symbol(text: str) -> str:
    """A symbol, without surrounding blanks; never empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a symbol cannot be empty: give one such as AAPL or BINANCE:BTCUSDT")
    return text.strip()


def positive(text: str) -> int:
    """A whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def check_range(start: datetime, end: datetime) -> None:
    """A ``UserError`` unless ``start`` is before ``end`` (ranges include the start, exclude the end)."""
    if start >= end:
        raise UserError(f"empty range: --start {shown(start)} is not before --end {shown(end)} "
                        "(the range includes --start and excludes --end)")


def check_known(kind: str, given: list[str], known) -> None:
    """A ``UserError`` naming what is known unless every name ``given`` is."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(f"unknown {kind} {', '.join(unknown)}; the {kind}s are: {', '.join(known)}")

