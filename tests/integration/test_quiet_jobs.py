"""A Spark job run by ticklake: its own lines and Spark's warnings on the terminal, Spark's
INFO lines and routine start-up warnings only in the run log."""
from __future__ import annotations

import pytest

from ticklake import logs
from ticklake.submit import spark_submit

pytestmark = pytest.mark.integration

JOB = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("ticklake-quiet-test").getOrCreate()
print(f"the job counted {spark.range(7).count()} rows")
print("a warning of the job", file=sys.stderr)
spark.stop()
"""


def test_spark_info_lines_go_only_into_the_run_log(settings, tmp_path, capfd):
    script = tmp_path / "quiet_job.py"
    script.write_text(JOB)
    with logs.run_log(tmp_path, "backtest", verbose=False) as log:
        spark_submit(settings, str(script))
    terminal = capfd.readouterr()
    text = log.path.read_text()
    assert "the job counted 7 rows" in terminal.out and "the job counted 7 rows" in text
    assert " INFO " not in terminal.err, terminal.err
    assert " INFO SparkContext: Running Spark version" in text
    # Spark's routine start-up warnings (infra/spark/log4j2.properties): in the run log only.
    assert "NativeCodeLoader" not in terminal.err and " WARN NativeCodeLoader: " in text
    # Spark hands a Python driver's stderr on through its stdout.
    assert "a warning of the job" in terminal.out + terminal.err and "a warning of the job" in text
