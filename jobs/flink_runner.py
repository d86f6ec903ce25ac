"""Launch the PyFlink smoke job in its own environment (.venv-flink) from ticklake's."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from schemas.derive import flink_columns
from schemas.models import Trade
from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError

FLINK_PYTHON = PROJECT_ROOT / ".venv-flink" / "bin" / "python"


def run_flink_smoke(settings: Settings, out_path: Path, timeout: float = 300) -> dict[str, dict]:
    """Per-symbol ``{"trades", "low", "high"}`` of everything in the trades topic."""
    if not FLINK_PYTHON.exists():
        raise UserError(f"PyFlink's environment {FLINK_PYTHON.parent.parent} is missing: run infra/bootstrap.sh")
    jars = sorted((settings.jars_dir / "flink").glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise UserError(f"no Flink Kafka connector in {settings.jars_dir / 'flink'}: run infra/fetch-jars.sh")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(FLINK_PYTHON), str(PROJECT_ROOT / "jobs" / "flink_smoke.py"),
        "--bootstrap-servers", settings.kafka.bootstrap_servers, "--topic", settings.kafka.trades_topic,
        "--jar", str(jars[-1]), "--columns", flink_columns(Trade), "--out", str(out_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise UserError(f"the PyFlink smoke job failed:\n{result.stderr[-3000:]}")
    rows = [json.loads(line) for line in out_path.read_text().splitlines() if line.strip()]
    return {row.pop("symbol"): row for row in rows}
