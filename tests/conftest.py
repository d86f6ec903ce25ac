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
    from ticklake.provision import isolated

    return isolated(base, uuid.uuid4().hex[:8], tmp_path / "checkpoints")


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
