"""Fixtures of the unit tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def spark():
    """A small local Spark in UTC, without connectors, for transforms on hand-made frames."""
    pyspark = pytest.importorskip("pyspark")
    session = (
        pyspark.sql.SparkSession.builder.master("local[1]")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    yield session
    session.stop()
