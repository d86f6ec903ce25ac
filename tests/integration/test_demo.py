"""``ticklake demo`` end to end on private topics and tables: a newcomer's terminal shows what the
pipeline made, in a screenful or two, and no engine's log lines; those are all in the run log."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ticklake.config import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_LINES = 100
# Log lines of the engines and clients: log4j's (Spark, Kafka's Java client), Python logging's
# of anything but ticklake (kafka-python, the Cassandra driver, py4j), librdkafka's own, and
# terminal colour escapes (Maven's ESC[0m among them).
ENGINE_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|ERROR) "
                         r"|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ (?!ticklake\.)"
                         r"|^%\d\|"
                         r"|\x1b\[")


@pytest.mark.timeout(900)
def test_the_demo_shows_only_what_matters(pipeline_settings):
    env = {**os.environ, **pipeline_settings.as_environment()}
    done = subprocess.run([sys.executable, "-m", "ticklake.cli", "demo", "--trades", "3000"], cwd=PROJECT_ROOT,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=840)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout[-5000:]
    assert len(lines) <= MAX_LINES, done.stdout
    engine = [line for line in lines if ENGINE_LINE.search(line)]
    assert not engine, "\n".join(engine)
    # What the pipeline made, each in one block.
    text = done.stdout
    assert "producer: ProducerStats(frames=" in text and "trades_produced=3000" in text
    assert "one-minute bars in Cassandra" in text and "the lake's Iceberg tables" in text
    lake_rows = {line.split()[0]: line.split()[1] for line in lines if line.strip().startswith(
        f"{pipeline_settings.iceberg.namespace}.")}
    assert lake_rows[f"{pipeline_settings.iceberg.namespace}.{pipeline_settings.iceberg.trades_table}"] == "3000"
    assert "bar evaluations in" in text and "alerts of the real-time job" in text
    # The rest went into the run log the last line names.
    log = Path(re.search(r"full log: (\S+)", lines[-1]).group(1))
    logged = log.read_text()
    assert " INFO SparkContext: Running Spark version" in logged
    assert "INFO ticklake.producer: connecting to" in logged
