"""Where the streaming job's driver reads and writes 1-minute bars (``bar_state.BarStore``).

A batch changes a few bars (symbols x open minutes), so they travel as rows through the
driver: Cassandra through cassandra-driver's prepared statements, Iceberg through a MERGE
of a small frame. Neither needs a Spark job to find the stored bars of a batch.
"""
from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import datetime, timezone
from functools import reduce
from itertools import groupby

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import sinks
from jobs.bar_state import BarState, Key, as_datetime, epoch_us
from schemas.derive import spark_schema
from schemas.models import MinuteBar
from ticklake.config import Settings

COLUMNS = list(MinuteBar.model_fields)
TIMES = ("window_start", "open_ts", "close_ts")


def state_of(row: dict) -> BarState:
    """A stored bar (``MinuteBar`` fields, the times in ``TIMES`` as epoch microseconds)."""
    return BarState(
        symbol=row["symbol"], window_start_us=row["window_start"], open=row["open"], open_ts_us=row["open_ts"],
        close=row["close"], close_ts_us=row["close_ts"], high=row["high"], low=row["low"], volume=row["volume"],
        trade_count=row["trade_count"], notional=(row["vwap"] or 0.0) * row["volume"],
        last_partition=row["last_kafka_partition"], last_offset=row["last_kafka_offset"])


def day_ranges(keys: Iterable[Key]) -> list[tuple[str, datetime, int, int]]:
    """The keys as (symbol, UTC day, first and last window start): one range per bar partition."""
    def partition(key: Key):
        return key[0], as_datetime(key[1]).date()

    return [(symbol, day, min(starts), max(starts))
            for (symbol, day), group in groupby(sorted(keys, key=partition), key=partition)
            for starts in [[start for _, start in group]]]


class CassandraBars:
    """The bars table of Cassandra, through one cassandra-driver session opened at first use
    (so a Cassandra that is away fails the batch, and the job's restart waits it out)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.session = None

    def _connect(self):
        from cassandra import ConsistencyLevel
        from ticklake.cql import cassandra_cluster

        cas = self.settings.cassandra
        session = cassandra_cluster(self.settings, ConsistencyLevel.LOCAL_QUORUM).connect()
        table = cas.qualified(cas.bars_table)
        self.select = session.prepare(
            f"SELECT {', '.join(COLUMNS)} FROM {table} "
            "WHERE symbol = ? AND trade_date = ? AND window_start >= ? AND window_start <= ?")
        self.insert = session.prepare(
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})")
        self.session = session
        return session

    def load(self, keys: Iterable[Key]) -> dict[Key, BarState]:
        from cassandra.concurrent import execute_concurrent_with_args

        session = self.session or self._connect()
        ranges = [(symbol, day, as_datetime(first), as_datetime(last)) for symbol, day, first, last in day_ranges(keys)]
        found = {}
        for _, rows in execute_concurrent_with_args(session, self.select, ranges, concurrency=32):
            for row in rows:
                values = row._asdict()
                values.update({name: None if values[name] is None else epoch_us(values[name]) for name in TIMES})
                bar = state_of(values)
                found[bar.key] = bar
        return found

    def write(self, bars: list[BarState]) -> None:
        from cassandra.concurrent import execute_concurrent_with_args

        session = self.session or self._connect()
        now = datetime.now(timezone.utc)
        rows = [tuple(bar.as_row(now)[name] for name in COLUMNS) for bar in bars]
        execute_concurrent_with_args(session, self.insert, rows, concurrency=32, raise_on_first_error=True)

    def close(self) -> None:
        if self.session is not None:
            self.session.cluster.shutdown()
            self.session = None


class IcebergBars:
    """The 1-minute bars table of the lake, through the job's main Spark session."""

    def __init__(self, lake: SparkSession, table: str) -> None:
        self.lake, self.table = lake, table

    def load(self, keys: Iterable[Key]) -> dict[Key, BarState]:
        ranges = [(F.col("symbol") == symbol) & (F.col("trade_date") == F.lit(day))
                  & F.col("window_start").between(F.lit(as_datetime(first)), F.lit(as_datetime(last)))
                  for symbol, day, first, last in day_ranges(keys)]
        rows = (self.lake.table(self.table).where(reduce(operator.or_, ranges))
                .select(*(F.unix_micros(name).alias(name) if name in TIMES else name for name in COLUMNS))
                .collect())
        return {bar.key: bar for bar in (state_of(row.asDict()) for row in rows)}

    def write(self, bars: list[BarState]) -> None:
        now = datetime.now(timezone.utc)
        frame = sinks.literal_frame(self.lake, spark_schema(MinuteBar), [bar.as_row(now) for bar in bars])
        sinks.merge_bars_iceberg(self.lake, frame, self.table)

    def close(self) -> None:
        pass
