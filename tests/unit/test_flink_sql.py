"""The real-time job's SQL and options, without Flink (the integration tests run them)."""
from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from jobs import flink_live, flink_sql
from schemas.models import Trade
from ticklake.cli import main
from ticklake.config import FlinkSettings, Settings
from ticklake.sandbox import isolated


def _opts(settings: Settings, tmp_path, **changes) -> dict:
    flink = settings.flink.model_copy(update={"state_dir": tmp_path, **changes})
    return flink_live.job_options(settings.model_copy(update={"flink": flink}))


def test_the_job_reads_the_fields_it_uses_of_the_trade_models_scalar_fields(settings, tmp_path):
    opts = _opts(settings, tmp_path)
    assert list(opts["fields"]) == [name for name in Trade.model_fields if name != "conditions"]
    assert flink_sql.REQUIRED.items() <= opts["fields"].items()
    ddl = flink_sql.source_ddl(opts)
    # The physical columns: only the fields the job uses (the format skips the others' values).
    assert re.findall(r"^  `(\w+)` (?:STRING|DOUBLE|BIGINT),$", ddl, re.M) == list(flink_sql.REQUIRED)
    assert "'format' = 'ticklake-trade-json'" in ddl
    with pytest.raises(ValueError, match="price"):
        flink_sql.source_ddl(opts | {"fields": opts["fields"] | {"price": "string"}})


def test_a_field_list_without_the_fields_the_job_needs_is_refused(settings, tmp_path):
    opts = _opts(settings, tmp_path)
    opts["fields"].pop("received_time_ms")
    with pytest.raises(ValueError, match="received_time_ms"):
        flink_sql.source_ddl(opts)


def test_options_are_quoted_and_exactly_once_sinks_get_a_transaction_timeout_the_broker_accepts(settings, tmp_path):
    opts = _opts(settings, tmp_path) | {"bars_topic": "it's"}
    ddl = flink_sql.upsert_sink_ddl("live_bars", flink_sql.BAR_COLUMNS, "symbol, window_start", opts["bars_topic"], opts)
    assert "'topic' = 'it''s'" in ddl
    assert "'sink.delivery-guarantee' = 'exactly-once'" in ddl
    assert f"'properties.transaction.timeout.ms' = '{settings.flink.transaction_timeout_ms}'" in ddl
    assert settings.flink.transaction_timeout_ms <= 900_000
    loose = flink_sql.upsert_sink_ddl("alerts", flink_sql.ALERT_COLUMNS, "alert_id", "a",
                                      opts | {"delivery_guarantee": "at-least-once"})
    assert "transaction" not in loose


def test_a_transaction_timeout_beyond_the_brokers_maximum_is_refused():
    with pytest.raises(ValidationError):
        FlinkSettings(transaction_timeout_ms=3_600_000)


@pytest.mark.parametrize("ms, literal", [
    (2000, "INTERVAL '0 00:00:02.000' DAY TO SECOND(3)"),
    (250, "INTERVAL '0 00:00:00.250' DAY TO SECOND(3)"),
    (90_061_001, "INTERVAL '1 01:01:01.001' DAY TO SECOND(3)"),
])
def test_intervals_are_day_time_literals(ms, literal):
    assert flink_sql._interval_seconds(ms) == literal


def test_the_order_key_puts_the_price_where_open_and_close_read_it():
    widths = re.findall(r"LPAD\(CAST\(\w+ AS STRING\), (\d+), '0'\)", flink_sql.TRADES_VIEW)
    assert sum(map(int, widths)) + 1 == flink_sql.PRICE_AT
    assert len(str(flink_sql.MAX_TIME_MS)) <= flink_sql.TIME_DIGITS and len(str(2**63 - 1)) <= flink_sql.OFFSET_DIGITS
    # The key sorts like (time, partition, offset): zero padding makes string order numeric order.
    key = lambda t, p, o: f"{t:0{flink_sql.TIME_DIGITS}}{p:0{flink_sql.PARTITION_DIGITS}}{o:0{flink_sql.OFFSET_DIGITS}}"
    keys = [(5, 0, 10), (5, 1, 2), (40, 0, 1), (1_000, 0, 0)]
    assert sorted(keys, key=lambda k: key(*k)) == sorted(keys)


def test_rules_can_be_turned_off_one_by_one(settings, tmp_path):
    opts = _opts(settings, tmp_path)
    everything = flink_sql.alerts_insert(opts["rules"])
    assert all(f"'{rule}' AS rule" in everything for rule in flink_sql.RULES)
    rules = {name: rule | {"enabled": name == "volume_spike"} for name, rule in opts["rules"].items()}
    only = flink_sql.alerts_insert(rules)
    assert "'volume_spike' AS rule" in only and "price_jump" not in only and "MATCH_RECOGNIZE" not in only
    assert flink_sql.alerts_insert({name: rule | {"enabled": False} for name, rule in opts["rules"].items()}) is None
    assert not any("INSERT INTO alerts" in s for s in flink_sql.statements(opts | {"rules": {}}))


def test_the_rally_pattern_has_one_variable_per_rising_bar():
    sql = flink_sql.failed_rally({"rising_bars": 4})
    assert "PATTERN (R1 R2 R3 R4 D)" in sql and "R4.`close` > R3.`close`" in sql and "D.`close` < R1.`open`" in sql


def test_isolated_settings_tag_the_real_time_topics_and_state(settings, tmp_path):
    tagged = isolated(settings, "t1", tmp_path)
    assert tagged.flink.bars_topic == f"{settings.flink.bars_topic}.t1"
    assert tagged.flink.alerts_topic == f"{settings.flink.alerts_topic}.t1"
    assert tagged.flink.rejects_topic == f"{settings.flink.rejects_topic}.t1"
    assert tagged.flink.state_dir == tmp_path / "flink"


def test_status_of_a_job_that_never_ran_says_where_it_would_resume(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TICKLAKE_FLINK__STATE_DIR", str(tmp_path))
    assert main(["flink", "status"]) == 3
    assert "stopped; resumes from the start" in capsys.readouterr().out
    assert main(["flink", "stop"]) == 0
    assert "not running" in capsys.readouterr().err


def test_the_newest_checkpoint_or_savepoint_is_the_one_resumed(settings, tmp_path):
    import os

    s = settings.model_copy(update={"flink": settings.flink.model_copy(update={"state_dir": tmp_path})})
    made = []
    for i, folder in enumerate(["checkpoints/job1/chk-3", "savepoints/savepoint-ab-1", "checkpoints/job2/chk-7"]):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "_metadata").write_bytes(b"")
        os.utime(tmp_path / folder / "_metadata", (1000 + i, 1000 + i))
        made.append(tmp_path / folder)
    assert flink_live.newest_snapshot(s) == made[2]
    flink_live.prune_snapshots(s, made[2])
    assert not made[0].exists() and not made[1].exists() and made[2].exists()


def test_the_metrics_reporter_binds_the_configured_host_through_the_loopback_factory(settings, tmp_path):
    from jobs.flink_realtime import cluster_config

    config = cluster_config(_opts(settings, tmp_path, metrics_host="127.0.0.2"))
    assert config["metrics.reporter.prom.factory.class"] == \
        "org.apache.flink.metrics.prometheus.LoopbackPrometheusReporterFactory"
    assert config["metrics.reporter.prom.host"] == "127.0.0.2"
    assert config["metrics.reporter.prom.port"] == str(settings.flink.metrics_port)
    assert not any(key.startswith("metrics.reporter") for key in cluster_config(_opts(settings, tmp_path, metrics_port=0)))


def test_price_jump_reads_buckets_not_a_window_of_trades(settings, tmp_path):
    rule = _opts(settings, tmp_path)["rules"]["price_jump"] | {"seconds": 10, "bucket_ms": 500}
    buckets, jumps = flink_sql.price_jump_views(rule)
    assert "TUMBLE(TABLE trades, DESCRIPTOR(event_time), INTERVAL '0 00:00:00.500' DAY TO SECOND(3))" in buckets
    # The 10 s before each bucket, aggregates the slices can share (nothing depends on the window).
    assert "HOP(TABLE price_buckets, DESCRIPTOR(bucket_time), INTERVAL '0 00:00:00.500' DAY TO SECOND(3), " \
           "INTERVAL '0 00:00:10.000' DAY TO SECOND(3))" in jumps
    assert " OVER " not in buckets + jumps and "FILTER" not in jumps
    views = flink_sql.statements(_opts(settings, tmp_path))
    assert any(v.startswith("CREATE TEMPORARY VIEW price_jumps") for v in views)


def test_a_price_jump_window_of_part_buckets_is_refused():
    from ticklake.config import PriceJumpRule

    with pytest.raises(ValidationError, match="whole number of buckets"):
        PriceJumpRule(seconds=10, bucket_ms=3000)


def test_the_trades_and_the_rejects_count_test_records_with_one_rule(settings, tmp_path):
    from jobs.flink_realtime import cluster_config

    opts = _opts(settings, tmp_path)
    assert flink_sql.REJECT_REASON in flink_sql.TRADES_VIEW and flink_sql.REJECT_REASON in flink_sql.REJECTS_INSERT
    assert all("JSON_VALUE" not in s for s in flink_sql.statements(opts))
    assert cluster_config(opts).items() >= flink_sql.PLANNER_OPTIONS.items()  # one ``trades`` row for all


def test_the_watermark_interval_is_a_setting(settings, tmp_path):
    from jobs.flink_realtime import cluster_config

    assert cluster_config(_opts(settings, tmp_path, watermark_interval_ms=50))["pipeline.auto-watermark-interval"] == "50 ms"


def test_the_settings_name_the_rules_the_sql_has_and_the_bench_floor_has_none(settings, tmp_path):
    from ticklake.flink_bench import without_rules

    assert set(settings.flink.rules()) == set(flink_sql.RULES)
    floor = without_rules(settings)
    opts = flink_live.job_options(floor.model_copy(update={"flink": floor.flink.model_copy(update={"state_dir": tmp_path})}))
    assert not any("INSERT INTO alerts" in s for s in flink_sql.statements(opts))
    assert any(s.startswith("INSERT INTO live_bars") for s in flink_sql.statements(opts))


def test_checkpoints_are_unaligned_unless_turned_off(settings, tmp_path):
    from jobs.flink_realtime import cluster_config

    assert cluster_config(_opts(settings, tmp_path))["execution.checkpointing.unaligned.enabled"] == "true"
    off = cluster_config(_opts(settings, tmp_path, unaligned_checkpoints=False))
    assert off["execution.checkpointing.unaligned.enabled"] == "false"
    assert off["execution.checkpointing.mode"] == "EXACTLY_ONCE"
