"""The streaming job unchanged on a Spark standalone cluster (master and worker on loopback)."""
from __future__ import annotations

import pytest

from tests.integration.test_stream_exactness import POISON, assert_quarantined_exactly, load_topic, topic_contents
from tests.stores import assert_stores_hold_exactly
from ticklake import services
from ticklake.submit import spark_submit

pytestmark = pytest.mark.integration


def test_the_streaming_job_runs_unchanged_on_a_standalone_master_and_worker(pipeline_settings, tmp_path):
    settings = pipeline_settings
    running_before = all(st.running for st in services.status(settings, cluster=True))
    services.up(settings, cluster=True)
    try:
        load_topic(settings, tmp_path, 2000, seed=5)
        spark_submit(settings, "jobs/ohlcv_stream.py", "--available-now",
                     spark_args=("--master", settings.spark.standalone_master_url))
    finally:
        if not running_before:
            services.down(settings, cluster=True)
    trades, others = topic_contents(settings)
    assert len(others) == len(POISON)
    assert_stores_hold_exactly(settings, trades)
    assert_quarantined_exactly(settings, others)
