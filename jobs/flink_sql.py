"""The Flink SQL of the real-time job (jobs/flink_realtime.py), built from the job's options;
its literals and WITH clauses, and the mini-cluster's loopback addresses, serve the smoke job
(jobs/flink_smoke.py) too.

Pure string building, no PyFlink: it is imported by the jobs in .venv-flink and by the unit
tests in .venv. All logic of the hot path is SQL, so it runs in the JVM; no Python UDFs.

Statements, in order:
- ``kafka_trades``: the trades topic, each record's fields read in one pass by the format
  ``ticklake-trade-json`` (infra/flink-format; null where a field is missing or not of its
  type), with its Kafka partition and offset, an event time from ``trade_time_ms`` and a
  bounded-out-of-orderness watermark;
- ``trades``: the valid trades (``REJECT_REASON`` null); ``minute_bars``: 1-minute tumbling windows in event time,
  final once the watermark has passed (the alert rules read them);
- three upsert-Kafka sinks: live bars (every trade, however late, updates its bar at once),
  alerts (one per event, keyed by a deterministic id), rejected-record counts by reason.

A bar's open and close are the price of the trade with the smallest and the largest
``(trade time, Kafka partition, Kafka offset)``: MIN and MAX over a string key that sorts in
that order and ends with the price. FIRST_VALUE and LAST_VALUE would follow arrival order.
"""
from __future__ import annotations

import os

# Widths of the zero-padded parts of the order key: trade times up to 9999-12-31 (15 digits),
# partitions, offsets (a Kafka offset is a signed 64-bit number).
TIME_DIGITS, PARTITION_DIGITS, OFFSET_DIGITS = 15, 5, 19
PRICE_AT = TIME_DIGITS + PARTITION_DIGITS + OFFSET_DIGITS + 1  # SUBSTRING is 1-based
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, as schemas.models.MAX_TRADE_TIME_MS
MAX_DOUBLE = "1.7976931348623157E308"

TRADE_FORMAT = "ticklake-trade-json"  # infra/flink-format, on the cluster's classpath
# Flink SQL types of the trade's scalar fields (schemas.derive kinds).
_TYPES = {"string": "STRING", "double": "DOUBLE", "long": "BIGINT"}
# The fields the job reads, all it declares in the source (the format reads no other field's
# value); the source checks they are of the trade model's kinds.
REQUIRED = {"symbol": "string", "price": "double", "volume": "double", "trade_time_ms": "long",
            "received_time_ms": "long"}


# The mini-cluster's addresses: everything on loopback, including the BLOB server (else it binds
# the wildcard address).
LOOPBACK = {
    "jobmanager.bind-host": "127.0.0.1",
    "taskmanager.bind-host": "127.0.0.1",
    "taskmanager.host": "127.0.0.1",
    "rest.bind-address": "127.0.0.1",
    "rest.address": "127.0.0.1",
}


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def with_clause(options: dict[str, str]) -> str:
    return "WITH (\n  " + ",\n  ".join(f"{sql_string(k)} = {sql_string(str(v))}" for k, v in options.items()) + "\n)"


def _interval_seconds(ms: int) -> str:
    """A day-time interval literal of ``ms`` milliseconds (Flink takes no precision beyond
    SECOND(3) for a plain seconds literal; up to 99 days this way)."""
    seconds, millis = divmod(int(ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"INTERVAL '{days} {hours:02}:{minutes:02}:{seconds:02}.{millis:03}' DAY TO SECOND(3)"


def kafka_properties(opts: dict) -> dict[str, str]:
    """The connector's security properties (ticklake.security.flink_kafka_properties), their
    password reference expanded from this process's environment."""
    return {key: os.path.expandvars(value) for key, value in opts.get("kafka_properties", {}).items()}


def source_ddl(opts: dict) -> str:
    """``kafka_trades``: the fields of ``REQUIRED``, which must be the trade model's (``opts["fields"]``)."""
    fields = opts["fields"]
    missing = {name for name, kind in REQUIRED.items() if fields.get(name) != kind}
    if missing:
        raise ValueError(f"the trade fields lack {sorted(missing)} (of the kinds the job reads)")
    options = {
        "connector": "kafka",
        "topic": opts["trades_topic"],
        "properties.bootstrap.servers": opts["bootstrap_servers"], **kafka_properties(opts),
        "properties.group.id": opts["group_id"],
        "scan.startup.mode": opts["startup_mode"],
        "format": TRADE_FORMAT,
    }
    if opts.get("bounded"):
        options["scan.bounded.mode"] = "latest-offset"  # tests: stop at the offsets of the start
    columns = "".join(f"  `{name}` {_TYPES[kind]},\n" for name, kind in REQUIRED.items())
    return f"""CREATE TEMPORARY TABLE kafka_trades (
{columns}  `kafka_partition` INT METADATA FROM 'partition' VIRTUAL,
  `kafka_offset` BIGINT METADATA FROM 'offset' VIRTUAL,
  `event_time` AS TO_TIMESTAMP_LTZ(COALESCE(`trade_time_ms`, 0), 3),
  WATERMARK FOR `event_time` AS `event_time` - {_interval_seconds(opts["watermark_ms"])}
) {with_clause(options)}"""


# Why a record of ``kafka_trades`` is not a trade (null: it is one); ``trades`` and the
# rejects count each evaluate it on the parsed columns.
REJECT_REASON = f"""CASE
    WHEN `symbol` IS NULL OR `price` IS NULL OR `volume` IS NULL OR `trade_time_ms` IS NULL
      OR `received_time_ms` IS NULL THEN 'malformed'
    WHEN CHAR_LENGTH(`symbol`) = 0 THEN 'empty_symbol'
    WHEN NOT (`price` > 0 AND `price` <= {MAX_DOUBLE}) THEN 'bad_price'
    WHEN NOT (`volume` >= 0 AND `volume` <= {MAX_DOUBLE}) THEN 'bad_volume'
    WHEN NOT (`trade_time_ms` > 0 AND `trade_time_ms` <= {MAX_TIME_MS}) THEN 'bad_time'
  END"""

# The planner options that make ``trades`` one node of the plan: the statements expand the
# views each on its own, and with this the optimizer finds the identical sub-plans by their
# digest and optimizes them once, as a block whose output its consumers share (else it merges
# the checks and the order key into each consumer's projection, one evaluation per consumer).
PLANNER_OPTIONS = {"table.optimizer.reuse-optimize-block-with-digest-enabled": "true"}

TRADES_VIEW = """CREATE TEMPORARY VIEW trades AS
SELECT symbol, price, volume, trade_time_ms, received_time_ms, kafka_partition, kafka_offset, event_time,
  LPAD(CAST(trade_time_ms AS STRING), {t}, '0') || LPAD(CAST(kafka_partition AS STRING), {p}, '0')
    || LPAD(CAST(kafka_offset AS STRING), {o}, '0') || CAST(price AS STRING) AS order_key
FROM kafka_trades WHERE ({reason}) IS NULL""".format(t=TIME_DIGITS, p=PARTITION_DIGITS, o=OFFSET_DIGITS, reason=REJECT_REASON)

# OHLCV of a group of trades (README, "Bars").
_BAR_AGGREGATES = f"""CAST(SUBSTRING(MIN(order_key) FROM {PRICE_AT}) AS DOUBLE) AS `open`,
  MAX(price) AS high, MIN(price) AS low,
  CAST(SUBSTRING(MAX(order_key) FROM {PRICE_AT}) AS DOUBLE) AS `close`,
  SUM(volume) AS volume, COUNT(*) AS trade_count,
  CASE WHEN SUM(volume) > 0 THEN SUM(price * volume) / SUM(volume) END AS vwap"""

MINUTE_BARS_VIEW = f"""CREATE TEMPORARY VIEW minute_bars AS
SELECT symbol, window_start, window_end, window_time,
  MIN(trade_time_ms) - MOD(MIN(trade_time_ms), 60000) AS start_ms,
  {_BAR_AGGREGATES}
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
GROUP BY symbol, window_start, window_end, window_time"""

BAR_COLUMNS = """symbol STRING, window_start TIMESTAMP_LTZ(3), window_end TIMESTAMP_LTZ(3),
  `open` DOUBLE, high DOUBLE, low DOUBLE, `close` DOUBLE, volume DOUBLE, trade_count BIGINT, vwap DOUBLE"""
ALERT_COLUMNS = "alert_id STRING, rule STRING, symbol STRING, event_time TIMESTAMP_LTZ(3), `values` MAP<STRING, DOUBLE>"
REJECT_COLUMNS = "reason STRING, records BIGINT"


def upsert_sink_ddl(name: str, columns: str, key: str, topic: str, opts: dict) -> str:
    """An upsert-Kafka sink: JSON key and value, times as ISO-8601, the configured delivery
    guarantee (exactly-once: one Kafka transaction per checkpoint)."""
    options = {
        "connector": "upsert-kafka",
        "topic": topic,
        "properties.bootstrap.servers": opts["bootstrap_servers"], **kafka_properties(opts),
        "key.format": "json",
        "key.json.timestamp-format.standard": "ISO-8601",
        "value.format": "json",
        "value.json.timestamp-format.standard": "ISO-8601",
        "sink.delivery-guarantee": opts["delivery_guarantee"],
        "sink.parallelism": str(opts["parallelism"]),
    }
    if opts["delivery_guarantee"] == "exactly-once":
        options["sink.transactional-id-prefix"] = f"{opts['transactional_id_prefix']}-{name}"
        # The client's default (1 h) is more than a broker accepts (transaction.max.timeout.ms, 15 min).
        options["properties.transaction.timeout.ms"] = str(opts["transaction_timeout_ms"])
    return f"CREATE TEMPORARY TABLE {name} (\n  {columns},\n  PRIMARY KEY ({key}) NOT ENFORCED\n) {with_clause(options)}"


LIVE_BARS_INSERT = f"""INSERT INTO live_bars
SELECT symbol, window_start, window_start + INTERVAL '1' MINUTE AS window_end,
  {_BAR_AGGREGATES}
FROM (SELECT *, TO_TIMESTAMP_LTZ(trade_time_ms - MOD(trade_time_ms, 60000), 3) AS window_start FROM trades)
GROUP BY symbol, window_start"""

REJECTS_INSERT = f"""INSERT INTO rejected
SELECT reason, COUNT(*) AS records FROM (SELECT {REJECT_REASON} AS reason FROM kafka_trades)
WHERE reason IS NOT NULL GROUP BY reason"""


def _alert_id(rule: str, *parts: str) -> str:
    """A deterministic id: the same event gives the same id in every run and after every restart."""
    return f"MD5(CONCAT_WS('|', {sql_string(rule)}, {', '.join(parts)}))"


def price_jump_views(rule: dict) -> list[str]:
    """The views under ``price_jump``: ``price_buckets``, each symbol's lowest and highest price
    per ``bucket_ms`` of event time (a tumbling window: each trade updates one bucket), and
    ``price_jumps``, each bucket beside the lowest and highest price of the ``seconds`` before it
    (a hopping window over the buckets, ``seconds * 1000 / bucket_ms`` of them per symbol, joined
    to the bucket that follows it by an event-time interval join). Neither costs more per trade
    when a window holds more trades, and both are append-only. The hopping window's aggregates
    must not depend on the window (a ``FILTER`` on ``window_end``, say): Flink then copies each
    bucket into every window instead of sharing 1-bucket slices between them."""
    seconds, bucket_ms = int(rule["seconds"]), int(rule["bucket_ms"])
    bucket = _interval_seconds(bucket_ms)
    return [f"""CREATE TEMPORARY VIEW price_buckets AS
SELECT symbol, window_start AS bucket_start, window_time AS bucket_time,
  MIN(trade_time_ms) - MOD(MIN(trade_time_ms), {bucket_ms}) AS start_ms, MIN(price) AS low, MAX(price) AS high
FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(event_time), {bucket}))
GROUP BY symbol, window_start, window_end, window_time""", f"""CREATE TEMPORARY VIEW price_jumps AS
SELECT b.symbol, b.start_ms, b.bucket_time AS event_time, b.low, b.high,
  r.start_ms AS before_start_ms, r.low AS before_low, r.high AS before_high
FROM price_buckets b JOIN (
  SELECT symbol, window_end, window_time, MIN(start_ms) AS start_ms, MIN(low) AS low, MAX(high) AS high
  FROM TABLE(HOP(TABLE price_buckets, DESCRIPTOR(bucket_time), {bucket}, {_interval_seconds(seconds * 1000)}))
  GROUP BY symbol, window_start, window_end, window_time
) r ON b.symbol = r.symbol AND b.bucket_start = r.window_end
  AND b.bucket_time BETWEEN r.window_time AND r.window_time + {bucket}"""]


def price_jump(rule: dict) -> str:
    """The price moves by more than ``percent`` % within ``seconds`` seconds, measured between
    buckets of ``bucket_ms`` of event time (1 s; ``price_jump_views``): a bucket's highest price
    is that much above the lowest price of the symbol in the ``seconds`` before the bucket, or its
    lowest that much below their highest. One alert per symbol, direction and ``seconds``-long
    period of event time (the first bucket that jumps); the alert id names all three.

    So a move between two trades in different buckets at most ``seconds`` apart always counts,
    one up to ``seconds`` plus a bucket apart may count, and a move within one bucket counts once
    a later bucket still shows it (a spike that reverts inside its bucket does not). An alert
    comes when the watermark passes the end of its bucket.

    The first jump of a period is the one whose previous jump (in event time, same symbol and
    direction) is of an earlier period, or that has none: an event-time OVER window, which sorts
    its rows by the watermark and never takes an alert back, in whatever order the join's rows
    reach it (ROW_NUMBER's deduplication would retract one when a later bucket comes first, as
    two slots do: the join is keyed by symbol and bucket)."""
    pct, seconds, bucket_ms = float(rule["percent"]), int(rule["seconds"]), int(rule["bucket_ms"])
    period = f"FLOOR(start_ms / {seconds * 1000})"
    return f"""SELECT {_alert_id('price_jump', 'symbol', 'direction', 'CAST(time_period AS STRING)')} AS alert_id,
  'price_jump' AS rule, symbol, event_time,
  MAP['price', price, 'reference_price', reference, 'change_percent', (price - reference) / reference * 100,
      'seconds', CAST({seconds} AS DOUBLE), 'bucket_ms', CAST({bucket_ms} AS DOUBLE),
      'bucket_start_ms', CAST(start_ms AS DOUBLE), 'reference_start_ms', CAST(before_start_ms AS DOUBLE),
      'bucket_low', low, 'bucket_high', high, 'reference_low', before_low, 'reference_high', before_high] AS `values`
FROM (
  SELECT *, CASE direction WHEN 'up' THEN high ELSE low END AS price,
    CASE direction WHEN 'up' THEN before_low ELSE before_high END AS reference,
    COUNT(*) OVER previous AS jumps, MIN(time_period) OVER previous AS previous_period
  FROM (
    SELECT *, 'up' AS direction, {period} AS time_period FROM price_jumps WHERE high > before_low * {1 + pct / 100!r}
    UNION ALL
    SELECT *, 'down' AS direction, {period} AS time_period FROM price_jumps WHERE low < before_high * {1 - pct / 100!r}
  )
  WINDOW previous AS (PARTITION BY symbol, direction ORDER BY event_time ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
WHERE jumps = 1 OR previous_period < time_period"""


def volume_spike(rule: dict) -> str:
    """A minute's volume exceeds ``factor`` times the mean volume of the ``minutes`` minutes
    before it; those minutes must all have trades (so a symbol's first minutes, or a gap, never
    make a spike out of nothing). Fires when the minute is final (watermark past its end)."""
    factor, minutes = float(rule["factor"]), int(rule["minutes"])
    return f"""SELECT {_alert_id('volume_spike', 'symbol', 'CAST(start_ms AS STRING)')} AS alert_id,
  'volume_spike' AS rule, symbol, window_time AS event_time,
  MAP['volume', volume, 'mean_volume', mean_volume, 'factor', volume / mean_volume,
      'minutes', CAST({minutes} AS DOUBLE), 'window_start_ms', CAST(start_ms AS DOUBLE),
      'open', `open`, 'high', high, 'low', low, 'close', `close`, 'trade_count', CAST(trade_count AS DOUBLE),
      'vwap', vwap]
    AS `values`
FROM (
  SELECT *, (SUM(volume) OVER w - volume) / {minutes} AS mean_volume, COUNT(*) OVER w AS bars
  FROM minute_bars
  WINDOW w AS (PARTITION BY symbol ORDER BY window_time
               RANGE BETWEEN INTERVAL '{minutes}' MINUTE PRECEDING AND CURRENT ROW)
)
WHERE bars = {minutes + 1} AND mean_volume > 0 AND volume > {factor!r} * mean_volume"""


def failed_rally(rule: dict) -> str:
    """MATCH_RECOGNIZE over a symbol's final 1-minute bars: ``rising_bars`` consecutive bars
    that each close above their open and above the close before, then the next bar closes
    below the first rising bar's open (the whole rally given back: a failed breakout).

    One pattern variable per rising bar (R1 R2 ... D), each compared with the one before: the
    quantified ``R{n} D`` with LAST(R.close, 1) and FIRST(R.open) found no match on Flink 2.0.2
    for an input this form matches (tried on the test's crafted bars)."""
    rising = int(rule["rising_bars"])
    bars = [f"R{i}" for i in range(1, rising + 1)]
    define = ",\n    ".join(
        [f"R1 AS R1.`close` > R1.`open`"]
        + [f"{b} AS {b}.`close` > {b}.`open` AND {b}.`close` > {a}.`close`" for a, b in zip(bars, bars[1:])]
        + ["D AS D.`close` < R1.`open`"])
    highs = ", ".join(f"{b}.high" for b in bars)
    return f"""SELECT {_alert_id('failed_rally', 'symbol', 'CAST(rally_start AS STRING)')} AS alert_id,
  'failed_rally' AS rule, symbol, event_time,
  MAP['rally_open', rally_open, 'rally_high', rally_high, 'drop_close', drop_close,
      'rising_bars', CAST({rising} AS DOUBLE), 'rally_start_ms', CAST(rally_start AS DOUBLE),
      'drop_start_ms', CAST(drop_start AS DOUBLE)] AS `values`
FROM minute_bars
MATCH_RECOGNIZE (
  PARTITION BY symbol
  ORDER BY window_time
  MEASURES
    R1.start_ms AS rally_start, R1.`open` AS rally_open, GREATEST({highs}) AS rally_high,
    D.start_ms AS drop_start, D.`close` AS drop_close, MATCH_ROWTIME() AS event_time
  ONE ROW PER MATCH
  AFTER MATCH SKIP PAST LAST ROW
  PATTERN ({' '.join(bars)} D)
  DEFINE
    {define}
)"""


RULES = {"price_jump": price_jump, "volume_spike": volume_spike, "failed_rally": failed_rally}
RULE_VIEWS = {"price_jump": price_jump_views}  # the views a rule reads, beside trades and minute_bars


def _enabled(rules: dict[str, dict]) -> dict[str, dict]:
    return {name: rule for name, rule in rules.items() if rule.get("enabled", True)}


def alerts_insert(rules: dict[str, dict]) -> str | None:
    """One INSERT of every enabled rule's alerts, or None when no rule is enabled."""
    selects = [RULES[name](rule) for name, rule in _enabled(rules).items()]
    if not selects:
        return None
    return "INSERT INTO alerts\n" + "\nUNION ALL\n".join(f"({select})" for select in selects)


def statements(opts: dict) -> list[str]:
    """DDL first, then the INSERTs (run together as one job)."""
    ddl = [
        source_ddl(opts), TRADES_VIEW, MINUTE_BARS_VIEW,
        upsert_sink_ddl("live_bars", BAR_COLUMNS, "symbol, window_start", opts["bars_topic"], opts),
        upsert_sink_ddl("alerts", ALERT_COLUMNS, "alert_id", opts["alerts_topic"], opts),
        upsert_sink_ddl("rejected", REJECT_COLUMNS, "reason", opts["rejects_topic"], opts),
        *(view for name, rule in _enabled(opts["rules"]).items() for view in RULE_VIEWS.get(name, lambda _: [])(rule)),
    ]
    inserts = [LIVE_BARS_INSERT, REJECTS_INSERT, alerts_insert(opts["rules"])]
    return ddl + [insert for insert in inserts if insert]
