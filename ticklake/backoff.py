"""Waiting before a retry: doubling from an initial delay up to a cap, with jitter where many
clients could retry at once (a reconnecting producer), without where one process restarts alone."""
from __future__ import annotations

import random


def backoff_seconds(attempt: int, initial: float, cap: float) -> float:
    """The delay before retry ``attempt`` (0 for the first): ``initial`` doubled per attempt, at most ``cap``."""
    return min(cap, initial * 2**attempt)


def jittered(delay: float, rng: random.Random) -> float:
    """Full jitter in ``[delay / 2, delay]``."""
    return rng.uniform(delay / 2, delay)
