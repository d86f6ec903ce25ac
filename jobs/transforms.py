"""Pure DataFrame transforms of the streaming and batch jobs (DataFrame in, DataFrame out).

They work the same on a streaming and on a static DataFrame, so tests run them on small
hand-made frames.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from schemas.derive import spark_schema
from schemas.models import MAX_TRADE_TIME_MS, Bar, MinuteBar, QuarantinedRecord, Trade, TradeRow

BAR_SECONDS = 60
# Where from_json puts the text of a record that does not parse into Trade's fields and types.
CORRUPT = "_corrupt_record"
JSON_OPTIONS = {"columnNameOfCorruptRecord": CORRUPT, "allowNonNumericNumbers": "false"}


def _trade_checks() -> tuple[tuple[str, Column], ...]:
    """What must hold for a decoded Kafka record to be a trade we store: reason, failed test.

    ``malformed``: no value, not JSON (NaN included), or not an object of Trade's field types
    (an array, a string price), all found by the one JSON parse."""
    return (
        ("malformed", F.col("t").isNull() | F.col(f"t.{CORRUPT}").isNotNull()),
        ("missing_field", F.col("t.symbol").isNull() | F.col("t.price").isNull()
         | F.col("t.volume").isNull() | F.col("t.trade_time_ms").isNull()
         | F.col("t.received_time_ms").isNull()),
        ("empty_symbol", F.length("t.symbol") == 0),
        ("bad_price", F.isnan("t.price") | (F.col("t.price") <= 0) | (F.col("t.price") == float("inf"))),
        ("bad_volume", F.isnan("t.volume") | (F.col("t.volume") < 0) | (F.col("t.volume") == float("inf"))),
        ("bad_time", (F.col("t.trade_time_ms") <= 0) | (F.col("t.trade_time_ms") > MAX_TRADE_TIME_MS)),
    )


def _rejection_reason() -> Column:
    reason = F.lit(None).cast("string")
    for name, failed in reversed(_trade_checks()):
        reason = F.when(failed, F.lit(name)).otherwise(reason)
    return reason


def decode(kafka_records: DataFrame) -> DataFrame:
    """Kafka source rows -> rows with the decoded trade ``t`` and a ``reject_reason``.

    ``raw`` is the value as UTF-8 text, bytes that are not UTF-8 replaced by U+FFFD (a cast
    would keep them, and readers of the quarantine table then fail on the string)."""
    raw = F.decode(F.col("value"), "UTF-8")
    parsed = F.from_json(raw, spark_schema(Trade).add(CORRUPT, T.StringType()), JSON_OPTIONS)
    return (
        kafka_records.select(
            F.col("topic"),
            raw.alias("raw"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
            # Parsed inside a generator, so that it is parsed once: the optimizer pushes a filter on
            # the parsed fields (valid_trades, quarantined) through a projection by copying the
            # parse into the filter once per field it reads (16 parses a record), never through this.
            F.explode(F.array(parsed)).alias("t"),
        )
        .withColumn("reject_reason", _rejection_reason())
    )


def raw_of_refused_only(decoded: DataFrame) -> DataFrame:
    """Decoded rows without the text of the valid ones, which nothing keeps: less to cache."""
    return decoded.withColumn("raw", F.when(F.col("reject_reason").isNotNull(), F.col("raw")))


def valid_trades(decoded: DataFrame) -> DataFrame:
    """Decoded rows that passed every check, shaped as ``TradeRow``."""
    trade_ts = F.timestamp_millis(F.col("t.trade_time_ms"))
    rows = decoded.where(F.col("reject_reason").isNull()).select(
        F.col("t.symbol").alias("symbol"),
        F.year(trade_ts).cast("long").alias("trade_year"),
        F.month(trade_ts).cast("long").alias("trade_month"),
        F.dayofmonth(trade_ts).cast("long").alias("trade_day"),
        trade_ts.alias("trade_ts"),
        F.col("kafka_partition").cast("long").alias("kafka_partition"),
        F.col("kafka_offset").cast("long").alias("kafka_offset"),
        F.col("t.price").alias("price"),
        F.col("t.volume").alias("volume"),
        F.col("t.conditions").alias("conditions"),
        F.coalesce(F.col("t.exchange"), F.lit("")).alias("exchange"),
        F.timestamp_millis(F.col("t.received_time_ms")).alias("received_at"),
    )
    return rows.select(*spark_schema(TradeRow).fieldNames())


def quarantined(decoded: DataFrame) -> DataFrame:
    """Decoded rows that failed a check, shaped as ``QuarantinedRecord``."""
    rows = decoded.where(F.col("reject_reason").isNotNull()).select(
        "topic",
        F.col("kafka_partition").cast("long").alias("kafka_partition"),
        F.col("kafka_offset").cast("long").alias("kafka_offset"),
        "raw",
        F.col("reject_reason").alias("reason"),
        F.current_timestamp().alias("quarantined_at"),
    )
    return rows.select(*spark_schema(QuarantinedRecord).fieldNames())


def one_minute_bars(trades: DataFrame) -> DataFrame:
    """Trades (``TradeRow`` columns) -> 1-minute OHLCV bars (``MinuteBar`` columns)."""
    return _minute_bars(_minute_aggregates(trades))


def bar_deltas(trades: DataFrame) -> DataFrame:
    """Trades (``TradeRow`` columns) -> per symbol and minute, the ``bar_state.BarDelta`` fields
    (times as epoch microseconds, free of the Python process's time zone).

    The streaming job builds it for every micro-batch, so it is one SQL statement: one call into
    the JVM where the same plan through the DataFrame API took some hundred (docs/BENCHMARKS.md). It
    takes no value that changes from batch to batch: Spark compiles the plan's code once and
    reuses it, where a literal (a watermark, say) would be compiled into new code every batch."""
    return _minute_aggregates(trades, """
        symbol, unix_micros(window_start) AS window_start_us,
        first.price AS open, unix_micros(first.trade_ts) AS open_ts_us,
        last.price AS close, unix_micros(last.trade_ts) AS close_ts_us,
        high, low, volume, trade_count, notional,
        first_position.kafka_partition AS first_partition, first_position.kafka_offset AS first_offset,
        last_position.kafka_partition AS last_partition, last_position.kafka_offset AS last_offset""")


def trades_after(trades: DataFrame, marks: DataFrame) -> DataFrame:
    """``trades`` without those at or before the last Kafka position of their bar in ``marks``
    (``symbol``, ``window_start``, ``last_kafka_partition``, ``last_kafka_offset``): the trades the
    stored bars do not hold yet (a symbol keeps to one partition)."""
    key = ["symbol", "window_start"]
    return (
        trades.withColumn("window_start", F.date_trunc("minute", "trade_ts"))
        .join(F.broadcast(marks), key, "left")
        .where(F.col("last_kafka_offset").isNull()
               | (F.col("kafka_partition") != F.col("last_kafka_partition"))
               | (F.col("kafka_offset") > F.col("last_kafka_offset")))
        .drop("window_start", "last_kafka_partition", "last_kafka_offset")
    )


# Trades -> per symbol and UTC minute: the earliest and latest trade (``first``, ``last``), high,
# low, volume, trade_count, notional (sum of price x volume), the first and last Kafka position.
# Earliest and latest by ``(trade_ts, kafka_partition, kafka_offset)``: ties broken by arrival
# order, never by the order Spark happens to see rows in (which is what first()/last() would give).
MINUTE_AGGREGATES = """
    SELECT {columns} FROM (
        SELECT symbol, date_trunc('minute', trade_ts) AS window_start,
               min(struct(trade_ts, kafka_partition, kafka_offset, price)) AS first,
               max(struct(trade_ts, kafka_partition, kafka_offset, price)) AS last,
               max(price) AS high, min(price) AS low, sum(volume) AS volume,
               count(1) AS trade_count, sum(price * volume) AS notional,
               min(struct(kafka_partition, kafka_offset)) AS first_position,
               max(struct(kafka_partition, kafka_offset)) AS last_position
        FROM {{trades}}
        GROUP BY symbol, date_trunc('minute', trade_ts))"""


def _minute_aggregates(trades: DataFrame, columns: str | None = None) -> DataFrame:
    """``MINUTE_AGGREGATES`` of ``trades`` (``TradeRow`` columns), as ``columns`` (SQL) or by
    default: ``symbol``, ``window_start``, open/close with their times, high, low, volume,
    trade_count, notional, ``first_position``, ``last_kafka_partition``, ``last_kafka_offset``."""
    columns = columns or """
        symbol, window_start, first.price AS open, first.trade_ts AS open_ts,
        last.price AS close, last.trade_ts AS close_ts, high, low, volume, trade_count, notional,
        first_position, last_position.kafka_partition AS last_kafka_partition,
        last_position.kafka_offset AS last_kafka_offset"""
    return trades.sparkSession.sql(MINUTE_AGGREGATES.format(columns=columns), trades=trades)


def _minute_bars(aggregates: DataFrame) -> DataFrame:
    ends = aggregates.withColumn("window_end", F.col("window_start") + F.expr(f"INTERVAL {BAR_SECONDS} SECONDS"))
    return _as_bars(ends, MinuteBar)


def window_bars(grouped: DataFrame) -> DataFrame:
    """Aggregates per symbol and time window ``w`` (open, high, low, close, volume,
    trade_count, and notional = sum of price x volume) -> ``Bar`` rows."""
    return _as_bars(grouped.withColumn("window_start", F.col("w.start")).withColumn("window_end", F.col("w.end")), Bar)


def _as_bars(aggregates: DataFrame, model: type[Bar]) -> DataFrame:
    """Aggregates with ``window_start`` and ``window_end`` -> rows of ``model``.

    ``trade_date`` is the UTC date of the window's start; ``vwap`` is notional / volume,
    null when the volume is 0.
    """
    bars = (
        aggregates.withColumn("trade_date", F.to_date("window_start"))
        .withColumn("trade_count", F.col("trade_count").cast("long"))
        .withColumn("vwap", F.when(F.col("volume") > 0, F.col("notional") / F.col("volume")))
        .withColumn("updated_at", F.current_timestamp())
    )
    return bars.select(*spark_schema(model).fieldNames())
