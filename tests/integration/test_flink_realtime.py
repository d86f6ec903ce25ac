"""The real-time PyFlink job on the real Kafka: live bars equal to tests/reference.py, each alert
rule firing on a crafted input and silent on a near miss, rejected records counted, exactly once.

Starting a mini-cluster costs half a minute here, so one bounded run serves the bars, rules and
rejects assertions, and one start / stop / restart run the operating ones.
"""
from __future__ import annotations

import json
import time

import pytest

from jobs import flink_live, flink_sql
from tests import reference
from tests.integration.test_stream_exactness import POISON, load_topic
from tests.stores import assert_bars_equal, cassandra_bars, time_range
from ticklake import live
from ticklake.config import Settings
from ticklake.security import kafka_python
from ticklake.topics import read_topic

pytestmark = pytest.mark.integration

MINUTE = 60_000


def _send(settings: Settings, trades: list[dict]) -> None:
    _send_raw(settings, [json.dumps(trade).encode() for trade in trades], keys=[trade["symbol"] for trade in trades])


def _send_raw(settings: Settings, values: list[bytes], keys: list[str] | None = None) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_python(settings, "producer"))
    for value, key in zip(values, keys or ["EDGE"] * len(values)):
        producer.send(settings.kafka.trades_topic, key=key.encode(), value=value)
    producer.flush()
    producer.close()


def format_edges(time_ms: int) -> tuple[list[bytes], list[bytes]]:
    """Records the trades' format (infra/flink-format) must read as tests/reference.py does:
    trades in unusual but valid JSON (symbol EDGE), and records that are not trades."""
    t = time_ms
    fields = f'"price":100.5,"volume":2,"trade_time_ms":{t},"received_time_ms":{t}'
    trades = [
        f' {{\n "received_time_ms" : {t} , "extra": {{"price": "x", "list": [1, {{"volume": null}}, []]}},'
        f' "symbol":"EDGE", "note": "say \\"price\\": \\"x\\"", "price":100, "volume":0,\n "trade_time_ms":{t + 1} }}\n',
        f'{{"symbol":"ED\\u0047E","price":1.005e2,"volume":0.5,"trade_time_ms":{t + 2},"received_time_ms":{t}}}',
    ]
    refused = [
        f'{{"symbol":123,{fields}}}',
        f'{{"symbol":"EDGE.BAD",{fields}}} trailing',
        f'{{"symbol":"EDGE.BAD",{fields}',
        f'{{"symbol":"EDGE.BAD","price":100.5,"volume":2,"trade_time_ms":{t}.0,"received_time_ms":{t}}}',
        f'{{"symbol":"EDGE.BAD","price":100.5,"volume":2,"trade_time_ms":1.7e12,"received_time_ms":{t}}}',
        f'{{"symbol":"EDGE.BAD","price":100.5,"volume":2,"trade_time_ms":1{"0" * 19},"received_time_ms":{t}}}',
        f'{{"symbol":"EDGE.BAD","price":true,"volume":2,"trade_time_ms":{t},"received_time_ms":{t}}}',
        f'{{"symbol":"EDGE.BAD","price":null,"volume":2,"trade_time_ms":{t},"received_time_ms":{t}}}',
        f'{{"symbol":"EDGE.BAD","price":[100.5],"volume":2,"trade_time_ms":{t},"received_time_ms":{t}}}',
        f'{{"trade":{{"symbol":"EDGE.BAD",{fields}}}}}',
        '"a string"', "null", "{}", "",
    ]
    return [r.encode() for r in trades], [r.encode() for r in refused]


def _trade(symbol: str, time_ms: int, price: float, volume: float = 1.0) -> dict:
    return {"symbol": symbol, "price": price, "volume": volume, "trade_time_ms": time_ms, "conditions": None,
            "exchange": "US", "received_time_ms": time_ms}


def crafted_trades(settings: Settings, t0: int) -> list[dict]:
    """For each rule a symbol that must fire it and a near miss that must not (thresholds from
    conf/test.toml's [flink.*] rules, which these inputs are made for)."""
    jump, spike, rally = settings.flink.price_jump, settings.flink.volume_spike, settings.flink.failed_rally
    assert (jump.percent, jump.seconds, spike.factor, spike.minutes, rally.rising_bars) == (2.0, 10, 5.0, 3, 3)
    trades = []
    for i in range(5):  # a flat price, then a jump of 2.5 % (fires) or 1.9 % (silent)
        trades += [_trade("JUMP", t0 + i * 1000, 100.0), _trade("JUMP.NEAR", t0 + i * 1000, 100.0)]
    trades += [_trade("JUMP", t0 + 5000, 102.5), _trade("JUMP.NEAR", t0 + 5000, 101.9),
               # 2.9 % above the flat price, but 11 s after it and only 1.1 % above the 101.9 of 10 s before
               _trade("JUMP.NEAR", t0 + 16_000, 103.0)]
    for minute, (fires, near) in enumerate([(10, 10), (10, 10), (10, 10), (51, 49)]):  # 5 x mean 10 = 50
        trades += [_trade("SPIKE", t0 + minute * MINUTE + 1000, 50.0, fires / 2),
                   _trade("SPIKE", t0 + minute * MINUTE + 2000, 50.0, fires / 2),
                   _trade("SPIKE.NEAR", t0 + minute * MINUTE + 1000, 50.0, near)]
    for minute, volume in [(5, 10), (6, 10), (8, 100)]:  # minute 7 has no trades: no mean of 3 minutes
        trades.append(_trade("SPIKE.NEAR", t0 + minute * MINUTE, 50.0, volume))
    bars = [(100, 101), (101, 102), (102, 103)]  # three rising bars, then a close below 100 (or not)
    for symbol, last_close in (("RALLY", 99.5), ("RALLY.NEAR", 100.5)):
        for minute, (open_, close) in enumerate([*bars, (103, last_close)]):
            trades += [_trade(symbol, t0 + minute * MINUTE + 1000, open_), _trade(symbol, t0 + minute * MINUTE + 50_000, close)]
    # In time order: a partition's trades never fall behind its watermark (no alert is dropped as late).
    return sorted(trades, key=lambda trade: trade["trade_time_ms"])


@pytest.fixture(scope="module")
def bounded_run(services, tmp_path_factory):
    """One bounded run over awkward trades (through the producer's path), poison records and
    the crafted inputs of each rule; the settings and what the topic holds."""
    from tests.conftest import isolated_settings
    from ticklake.sandbox import drop_named
    from ticklake.provision import provision

    tmp_path = tmp_path_factory.mktemp("flink-realtime")
    settings = isolated_settings(services, tmp_path)
    provision(settings)
    load_topic(settings, tmp_path, trades=3000, seed=12)  # about an hour ago, over 15 s of trade time
    edge_trades, refused = format_edges(int(time.time() * 1000) - 3_600_000)
    _send_raw(settings, edge_trades + refused)
    t0 = (int(time.time() * 1000) // MINUTE - 30) * MINUTE  # after those, so the watermark never drops a crafted trade
    _send(settings, crafted_trades(settings, t0))
    trades, others = reference.read_topic(settings, settings.kafka.trades_topic)
    flink_live.run_bounded(settings)
    yield settings, trades, others
    drop_named(settings)


def test_the_source_parses_each_record_once(settings, tmp_path):
    """The trades' format reads each record's JSON in one pass, in the source: the optimized plan
    has one scan of the topic, which the live bars, the rules and the rejects count share, and no
    JSON function (JSON_VALUE parsed each record again for every field, 2026-12-02)."""
    from tests.conftest import isolated_settings

    plan = flink_live.explain(isolated_settings(settings, tmp_path)).split("== Optimized Execution Plan ==")[1]
    assert plan.count("TableSourceScan(") == 1 and "JSON_" not in plan and "REGEXP(" not in plan


def test_the_trades_edge_records_are_read_as_the_reference_reads_them(bounded_run):
    settings, trades, others = bounded_run
    edge_trades, refused = format_edges(0)
    assert len([t for t in trades if t.symbol == "EDGE"]) == len(edge_trades)
    assert len(others) == len(POISON) + len(refused)  # and Flink counts as many rejects (below)


def test_no_rule_takes_an_alert_back(settings, tmp_path):
    """The alerts are an append-only stream: no deduplication that retracts (a ROW_NUMBER one
    did when two slots brought a later price bucket first), so the sink needs no upsert
    materializer, which would turn a retraction into a tombstone in the alerts topic."""
    from tests.conftest import isolated_settings

    plan = flink_live.explain(isolated_settings(settings, tmp_path)).split("== Optimized Execution Plan ==")[1]
    sink = [block for block in plan.split("\n\n") if block.startswith("Sink(table=[default_catalog.default_database.alerts]")]
    assert len(sink) == 1
    assert "upsertMaterialize" not in sink[0] and "Deduplicate(" not in sink[0] and "Rank(" not in sink[0]


def test_the_plan_aggregates_each_row_once_per_window_size(settings, tmp_path):
    """No hopping window is a window table function before its aggregate: Flink would copy each
    row into every window it belongs to (61 per price bucket) instead of aggregating 1-bucket
    slices once (``price_jump`` lost a sixth of the backlog throughput that way on 2026-12-03).
    And the rules on minute bars share one 1-minute aggregate of the trades."""
    from tests.conftest import isolated_settings

    plan = flink_live.explain(isolated_settings(settings, tmp_path)).split("== Optimized Execution Plan ==")[1]
    assert "HOP(" in plan and "WindowTableFunction(window=[HOP" not in plan
    assert plan.count("LocalWindowAggregate(groupBy=[symbol], window=[TUMBLE(time_col=[event_time], size=[1 min])]") == 1


def _alerts(settings: Settings) -> list[live.Alert]:
    return list(live.alerts(settings))


def flink_bars(settings: Settings) -> dict[tuple[str, int], dict]:
    return {(symbol, int(start.timestamp() * 1000)): bar for (symbol, start), bar in live.live_bars(settings).items()}


def test_live_bars_equal_the_reference(bounded_run):
    settings, trades, _ = bounded_run
    got = flink_bars(settings)
    assert_bars_equal(reference.bars(trades), got, "flink")
    for (_, start_ms), bar in got.items():
        start, end = live.parse_time(bar["window_start"]), live.parse_time(bar["window_end"])
        assert int(start.timestamp() * 1000) == start_ms and (end - start).total_seconds() == 60


def test_live_bars_equal_the_spark_jobs_cassandra_bars(bounded_run):
    from ticklake.submit import spark_submit

    settings, trades, _ = bounded_run
    spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now")
    start, end = time_range(trades)
    assert_bars_equal(cassandra_bars(settings, {t.symbol for t in trades}, start, end), flink_bars(settings), "flink")


def test_records_that_are_not_trades_are_counted_by_reason(bounded_run):
    settings, _, others = bounded_run
    counts = live.rejected_counts(settings)
    assert sum(counts.values()) == len(others) == len(POISON) + len(format_edges(0)[1])
    assert {"malformed", "empty_symbol", "bad_price", "bad_volume", "bad_time"} <= set(counts)


def test_every_alert_is_written_once_with_a_deterministic_id(bounded_run):
    settings, _, _ = bounded_run
    ids = [json.loads(r.value)["alert_id"] for r in read_topic(settings, settings.flink.alerts_topic)]
    assert ids and len(ids) == len(set(ids))


@pytest.mark.parametrize("rule, fires, near_miss", [
    ("price_jump", "JUMP", "JUMP.NEAR"),
    ("volume_spike", "SPIKE", "SPIKE.NEAR"),
    ("failed_rally", "RALLY", "RALLY.NEAR"),
])
def test_each_rule_fires_on_its_input_and_not_on_a_near_miss(bounded_run, rule, fires, near_miss):
    settings, _, _ = bounded_run
    alerts = [a for a in _alerts(settings) if a.rule == rule]
    assert [a.symbol for a in alerts if a.symbol in (fires, near_miss)] == [fires]


def test_the_alerts_carry_the_values_that_triggered_them(bounded_run):
    settings, _, _ = bounded_run
    by_rule = {a.rule: a for a in _alerts(settings) if a.symbol in ("JUMP", "SPIKE", "RALLY")}
    jump, spike, rally = by_rule["price_jump"], by_rule["volume_spike"], by_rule["failed_rally"]
    assert (jump.values["price"], jump.values["reference_price"]) == (102.5, 100.0)
    assert jump.values["change_percent"] == pytest.approx(2.5)
    assert (spike.values["volume"], spike.values["mean_volume"]) == (51.0, 10.0)
    assert (rally.values["rally_open"], rally.values["rally_high"], rally.values["drop_close"]) == (100.0, 103.0, 99.5)
    assert rally.event_time.timestamp() * 1000 % MINUTE == MINUTE - 1  # the drop bar's end (window time)


def test_the_alerts_command_prints_committed_alerts_since_a_time(bounded_run, monkeypatch, capsys):
    from ticklake.cli import main

    settings, _, _ = bounded_run
    monkeypatch.setattr("ticklake.cli.Settings", lambda: settings)
    alerts = _alerts(settings)
    assert main(["alerts", "--format", "json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["alert_id"] for p in printed] == [a.alert_id for a in alerts]
    assert printed[0]["values"] == alerts[0].values
    newest = max(a.event_time for a in alerts)
    assert main(["alerts", "--since", newest.isoformat()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["event_time", "rule", "symbol", "detail", "alert_id"]
    assert len(lines) == 1 + sum(a.event_time >= newest for a in alerts)
    assert main(["alerts", "--since", (newest.replace(year=newest.year + 1)).isoformat()]) == 1
