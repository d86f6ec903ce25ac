"""Backoff before a retry (ticklake/backoff.py), as the producer and the streaming supervisor use it."""
from __future__ import annotations

import random

from ticklake.backoff import backoff_seconds, jittered


def test_the_delay_doubles_up_to_the_cap():
    assert [backoff_seconds(attempt, 5.0, 60.0) for attempt in range(6)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


def test_jitter_stays_within_half_the_delay_and_varies():
    rng = random.Random(3)
    draws = [jittered(8.0, rng) for _ in range(50)]
    assert all(4.0 <= d <= 8.0 for d in draws) and len(set(draws)) > 1
