"""Shared fixtures. Tests read conf/test.toml, so they never touch the demo's names."""
from __future__ import annotations

import os
import uuid

import pytest

os.environ.setdefault("TICKLAKE_CONFIG", "conf/test.toml")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback

from ticklake.config import Settings  # noqa: E402  (after TICKLAKE_CONFIG is set)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


def isolated_settings(base: Settings, tmp_path) -> Settings:
    """A copy of ``base`` with its own topics, tables and checkpoint root."""
    tag = uuid.uuid4().hex[:8]
    k, c, i = base.kafka, base.cassandra, base.iceberg
    return base.model_copy(
        update={
            "kafka": k.model_copy(update={
                "trades_topic": f"{k.trades_topic}.{tag}",
                "dead_letter_topic": f"{k.dead_letter_topic}.{tag}",
            }),
            "cassandra": c.model_copy(update={
                "trades_table": f"{c.trades_table}_{tag}", "bars_table": f"{c.bars_table}_{tag}",
            }),
            "iceberg": i.model_copy(update={
                "trades_table": f"{i.trades_table}_{tag}", "bars_table": f"{i.bars_table}_{tag}",
                "quarantine_table": f"{i.quarantine_table}_{tag}",
            }),
            "spark": base.spark.model_copy(update={"checkpoint_root": tmp_path / "checkpoints"}),
        }
    )


@pytest.fixture(scope="session")
def services(settings: Settings) -> Settings:
    """Start (or find running) the real local Kafka and Cassandra."""
    from ticklake import services as svc

    svc.up(settings)
    return settings


@pytest.fixture
def pipeline_settings(services: Settings, tmp_path):
    """Running services plus a freshly provisioned, private set of topics and tables,
    deleted again afterwards so the shared services do not fill up."""
    from ticklake.provision import drop_named, provision

    isolated = isolated_settings(services, tmp_path)
    provision(isolated)
    yield isolated
    drop_named(isolated)


@pytest.fixture
def lake_settings(settings: Settings, tmp_path):
    """The lake alone (no Kafka or Cassandra): private bars and backtest tables, reports under
    ``tmp_path``; the tables are dropped afterwards."""
    from ticklake import lake

    tag = uuid.uuid4().hex[:8]
    i, bt = settings.iceberg, settings.backtest
    isolated = settings.model_copy(update={
        "iceberg": i.model_copy(update={"bars_table": f"{i.bars_table}_{tag}"}),
        "backtest": bt.model_copy(update={
            "runs_table": f"{bt.runs_table}_{tag}", "trades_table": f"{bt.trades_table}_{tag}",
            "equity_table": f"{bt.equity_table}_{tag}", "reports_dir": tmp_path / "reports",
        }),
        "spark": settings.spark.model_copy(update={"checkpoint_root": tmp_path / "checkpoints"}),
    })
    yield isolated
    catalog = lake.catalog(isolated)
    ice, bt = isolated.iceberg, isolated.backtest
    for table in (ice.bars_table, bt.runs_table, bt.trades_table, bt.equity_table):
        if catalog.table_exists(f"{ice.namespace}.{table}"):
            catalog.purge_table(f"{ice.namespace}.{table}")
