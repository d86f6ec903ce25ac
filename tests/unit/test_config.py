"""One configuration model: defaults, TOML file, environment, derived paths, secrets."""
from __future__ import annotations

from ticklake.config import Settings


def test_test_config_file_renames_everything_the_demo_uses(settings, monkeypatch):
    monkeypatch.setenv("TICKLAKE_CONFIG", "conf/ticklake.toml")
    demo = Settings()
    assert settings.kafka.trades_topic != demo.kafka.trades_topic
    assert settings.kafka.dead_letter_topic != demo.kafka.dead_letter_topic
    assert settings.cassandra.keyspace != demo.cassandra.keyspace
    assert settings.iceberg.namespace != demo.iceberg.namespace
    assert demo.kafka.bootstrap_servers == settings.kafka.bootstrap_servers  # same services


def test_environment_overrides_file_and_nested_names(monkeypatch):
    monkeypatch.setenv("TICKLAKE_KAFKA__TRADES_TOPIC", "trades.eu")
    monkeypatch.setenv("TICKLAKE_PRODUCER__SYMBOLS", '["A", "B"]')
    settings = Settings()
    assert settings.kafka.trades_topic == "trades.eu" and settings.producer.symbols == ["A", "B"]


def test_paths_derive_from_state_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TICKLAKE_STATE_DIR", str(tmp_path))
    settings = Settings()
    assert settings.iceberg.catalog_db == tmp_path / "lake" / "catalog.db"
    assert settings.spark.checkpoint_root == tmp_path / "checkpoints"
    assert settings.services_dir == tmp_path / "services"


def test_settings_survive_the_trip_to_a_child_process(monkeypatch, settings):
    changed = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"trades_topic": "x.y"})})
    for key, value in changed.as_environment().items():
        monkeypatch.setenv(key, value)
    child = Settings()
    assert child.kafka == changed.kafka and child.iceberg == changed.iceberg and child.spark == changed.spark


def test_token_comes_from_finnhub_token_and_is_never_printed(monkeypatch):
    monkeypatch.setenv("FINNHUB_TOKEN", "sekrit123")
    settings = Settings()
    assert settings.producer_url().endswith("?token=sekrit123")
    assert "sekrit123" not in settings.model_dump_json()
    assert "sekrit123" not in repr(settings)
    assert not any("sekrit123" in v for v in settings.as_environment().values())


def test_a_command_builds_its_settings_once(monkeypatch, capsys):
    """The parser's defaults (a backtest's cash, say) and the command see the same settings."""
    from ticklake import cli

    built = []

    class Counted(Settings):
        def __init__(self, **values):
            super().__init__(**values)
            built.append(self)

    monkeypatch.setattr(cli, "Settings", Counted)
    assert cli.main(["config"]) == 0
    assert len(built) == 1 and '"kafka"' in capsys.readouterr().out
