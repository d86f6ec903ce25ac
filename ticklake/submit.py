"""Run a job through spark-submit.sh with a given configuration."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError


def spark_submit_command(settings: Settings, script: str, *job_args: str,
                         spark_args: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """The command line of ``spark-submit.sh spark_args script job_args`` and its environment
    (``settings``)."""
    command = [str(PROJECT_ROOT / "spark-submit.sh"), *spark_args, script, *job_args]
    return command, {**os.environ, **settings.as_environment()}


def spark_submit(settings: Settings, script: str, *job_args: str, spark_args: tuple[str, ...] = ()) -> None:
    """Run ``spark-submit.sh spark_args script job_args`` with ``settings`` passed as environment."""
    command, env = spark_submit_command(settings, script, *job_args, spark_args=spark_args)
    print(f"[ticklake] running {' '.join(command)}", file=sys.stderr, flush=True)
    if subprocess.run(command, cwd=PROJECT_ROOT, env=env).returncode != 0:
        raise UserError(f"the Spark job {script} failed; see its output above")


def spark_submit_background(settings: Settings, script: str, *job_args: str, log: Path) -> subprocess.Popen:
    """Start ``spark-submit.sh script job_args`` in a session of its own (so it can be stopped or
    killed as a whole), its output appended to ``log``."""
    command, env = spark_submit_command(settings, script, *job_args)
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
