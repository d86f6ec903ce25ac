"""Run a job through spark-submit.sh with a given configuration."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ticklake import logs
from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError
from ticklake.processes import nice_session, terminate_groups


def spark_submit_command(settings: Settings, script: str, *job_args: str,
                         spark_args: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """The command line of ``spark-submit.sh spark_args script job_args`` and its environment
    (``settings``)."""
    command = [str(PROJECT_ROOT / "spark-submit.sh"), *spark_args, script, *job_args]
    return command, {**os.environ, **settings.as_environment()}


def spark_submit(settings: Settings, script: str, *job_args: str, spark_args: tuple[str, ...] = ()) -> None:
    """Run ``spark-submit.sh spark_args script job_args`` with ``settings`` passed as environment;
    in a command with a run log (``logs.run_log``), Spark's own lines below WARN go only into it."""
    command, env = spark_submit_command(settings, script, *job_args, spark_args=spark_args)
    print(f"[ticklake] running {' '.join(command)}", file=sys.stderr, flush=True)
    run_log = logs.current()
    if run_log is None:
        failed = subprocess.run(command, cwd=PROJECT_ROOT, env=env).returncode != 0
    else:
        failed = run_log.run(command, cwd=PROJECT_ROOT, env={**env, **run_log.environment()}) != 0
    if failed:
        where = f" and the full log {run_log.path}" if run_log else ""
        raise UserError(f"the Spark job {script} failed; see its output above{where}")


def spark_submit_background(settings: Settings, script: str, *job_args: str, log: Path,
                            niceness: int = 0) -> subprocess.Popen:
    """Start ``spark-submit.sh script job_args`` in a session of its own (so it can be stopped or
    killed as a whole), its output appended to ``log``, at ``niceness`` (``nice``)."""
    command, env = spark_submit_command(settings, script, *job_args)
    if niceness:
        command = ["nice", "-n", str(niceness), *command]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    nice_session(process.pid, niceness)
    return process


def spark_submit_together(runs: list[tuple[Settings, str, tuple[str, ...], int]],
                          spark_args: tuple[str, ...] = ()) -> None:
    """Run several ``spark-submit.sh`` jobs at once, each ``(settings, script, job_args, niceness)``
    in a session of its own, their output on this terminal, until all end. When one fails (or on
    Ctrl-C, or a SIGTERM to this process), the others are stopped too. In a command with a run
    log, as ``spark_submit``."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)

    run_log, processes = logs.current(), []
    # The jobs lead sessions of their own (each stopped as a whole): a SIGTERM for this process
    # (its group's, as a supervisor sends) must reach them through the finally below.
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        for settings, script, job_args, niceness in runs:
            command, env = spark_submit_command(settings, script, *job_args, spark_args=spark_args)
            if niceness:
                command = ["nice", "-n", str(niceness), *command]
            print(f"[ticklake] running {' '.join(command)}", file=sys.stderr, flush=True)
            if run_log is None:
                processes.append(subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True))
            else:
                processes.append(run_log.start(command, cwd=PROJECT_ROOT, env={**env, **run_log.environment()},
                                               start_new_session=True))
            nice_session(processes[-1].pid, niceness)
        while True:
            codes = [process.poll() for process in processes]
            if any(code not in (None, 0) for code in codes):
                where = f" and the full log {run_log.path}" if run_log else ""
                raise UserError(f"a Spark job of {runs[0][1]} failed; see its output above{where}")
            if None not in codes:
                return
            time.sleep(1)
    finally:
        signal.signal(signal.SIGTERM, previous)
        terminate_groups([process.pid for process in processes if process.poll() is None], timeout=60)
        if run_log is not None:
            for process in processes:
                run_log.finish(process)
