"""Pure DataFrame transforms of the streaming and batch jobs (DataFrame in, DataFrame out).

They work the same on a streaming and on a static DataFrame, so tests run them on small
hand-made frames.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from schemas.derive import spark_schema
from schemas.models import MAX_TRADE_TIME_MS, Bar, QuarantinedRecord, Trade, TradeRow

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
    return (
        kafka_records.select(
            F.col("topic"),
            raw.alias("raw"),
            F.from_json(raw, spark_schema(Trade).add(CORRUPT, T.StringType()), JSON_OPTIONS).alias("t"),
            F.col("partition").alias("kafka_partition"),
            F.col("offset").alias("kafka_offset"),
        )
        .withColumn("reject_reason", _rejection_reason())
    )


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
    """Trades (``TradeRow`` columns) -> 1-minute OHLCV bars (``Bar`` columns).

    Open and close come from the smallest and largest ``(trade_ts, kafka_partition,
    kafka_offset)``: the earliest trade, ties broken by arrival order, never by the order
    Spark happens to see rows in (which is what ``first()``/``last()`` would give).
    """
    order_key = F.struct("trade_ts", "kafka_partition", "kafka_offset", "price")
    grouped = trades.groupBy("symbol", F.window("trade_ts", f"{BAR_SECONDS} seconds").alias("w")).agg(
        F.min(order_key)["price"].alias("open"),
        F.max("price").alias("high"),
        F.min("price").alias("low"),
        F.max(order_key)["price"].alias("close"),
        F.sum("volume").alias("volume"),
        F.count(F.lit(1)).alias("trade_count"),
        F.sum(F.col("price") * F.col("volume")).alias("notional"),
    )
    return window_bars(grouped)


def window_bars(grouped: DataFrame) -> DataFrame:
    """Aggregates per symbol and time window ``w`` (open, high, low, close, volume,
    trade_count, and notional = sum of price x volume) -> ``Bar`` rows.

    ``trade_date`` is the UTC date of the window's start; ``vwap`` is notional / volume,
    null when the volume is 0.
    """
    bars = grouped.select(
        "symbol",
        F.to_date(F.col("w.start")).alias("trade_date"),
        F.col("w.start").alias("window_start"),
        F.col("w.end").alias("window_end"),
        "open", "high", "low", "close", "volume",
        F.col("trade_count").cast("long").alias("trade_count"),
        F.when(F.col("volume") > 0, F.col("notional") / F.col("volume")).alias("vwap"),
        F.current_timestamp().alias("updated_at"),
    )
    return bars.select(*spark_schema(Bar).fieldNames())
