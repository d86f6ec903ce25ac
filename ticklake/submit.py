"""Run a job through spark-submit.sh with a given configuration."""
from __future__ import annotations

import os
import subprocess
import sys

from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError


def spark_submit(settings: Settings, script: str, *job_args: str, spark_args: tuple[str, ...] = ()) -> None:
    """Run ``spark-submit.sh spark_args script job_args`` with ``settings`` passed as environment."""
    command = [str(PROJECT_ROOT / "spark-submit.sh"), *spark_args, script, *job_args]
    print(f"[ticklake] running {' '.join(command)}", file=sys.stderr, flush=True)
    env = {**os.environ, **settings.as_environment()}
    if subprocess.run(command, cwd=PROJECT_ROOT, env=env).returncode != 0:
        raise UserError(f"the Spark job {script} failed; see its output above")
