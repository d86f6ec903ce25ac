"""Shared fixtures. Tests read conf/test.toml, so they never touch the demo's names."""
from __future__ import annotations

import os
import sys
import uuid

import pytest

os.environ.setdefault("TICKLAKE_CONFIG", "conf/test.toml")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # stay on loopback
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers with the project's packages

from ticklake.config import Settings  # noqa: E402  (after TICKLAKE_CONFIG is set)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


def isolated_settings(base: Settings, tmp_path) -> Settings:
    """A copy of ``base`` with its own topics, tables and checkpoint root."""
    from ticklake.sandbox import isolated

    return isolated(base, uuid.uuid4().hex[:8], tmp_path / "checkpoints")


def private_lake_settings(base: Settings, root) -> Settings:
    """``base`` with a lake of its own under ``root``: its own SQLite catalog, so no other
    process's writes wait for it or it for them."""
    lake = base.iceberg.model_copy(update={"catalog_db": root / "catalog.db", "warehouse": root / "warehouse"})
    return base.model_copy(update={"iceberg": lake})


@pytest.fixture
def lake_settings(settings: Settings, tmp_path) -> Settings:
    """Settings with an empty private lake (no services needed), checkpoints and backtest
    reports under ``tmp_path``."""
    private = private_lake_settings(settings, tmp_path / "lake")
    return private.model_copy(update={
        "backtest": private.backtest.model_copy(update={"reports_dir": tmp_path / "reports"}),
        "spark": private.spark.model_copy(update={"checkpoint_root": tmp_path / "checkpoints"}),
    })


@pytest.fixture(scope="session")
def lake_spark(settings: Settings):
    """One Spark session with the connector jars for every lake test of the run."""
    from jobs.session import build_session

    session = build_session(settings, "ticklake-tests", with_jars=True)
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture
def spark_lake_settings(lake_spark, lake_settings: Settings) -> Settings:
    """``lake_settings`` whose private lake ``lake_spark`` knows as a catalog of its own."""
    from jobs.session import spark_conf

    name = f"lake_{uuid.uuid4().hex[:8]}"
    attached = lake_settings.model_copy(update={"iceberg": lake_settings.iceberg.model_copy(update={"catalog_name": name})})
    for key, value in spark_conf(attached).items():
        if key.startswith(f"spark.sql.catalog.{name}"):
            lake_spark.conf.set(key, value)
    # Tests change tables with pyiceberg between Spark reads in one long session: no cached
    # table metadata (a job is a process of its own and loads tables fresh anyway).
    lake_spark.conf.set(f"spark.sql.catalog.{name}.cache-enabled", "false")
    return attached


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
    from ticklake.sandbox import drop_named
    from ticklake.provision import provision

    isolated = isolated_settings(services, tmp_path)
    provision(isolated)
    yield isolated
    drop_named(isolated)
