"""Quiet commands: a job's output reaches the terminal and the run log; helpers' only the log."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ticklake import logs

ROOT = Path(__file__).resolve().parents[2]
CHILD = "import sys; print('out 1'); print('err 1', file=sys.stderr); print('out 2', flush=True)"


def test_a_job_prints_to_the_terminal_and_the_run_log(tmp_path, capsys):
    with logs.run_log(tmp_path, "demo", verbose=False) as log:
        print("[ticklake] before the job")
        assert log.run([sys.executable, "-c", CHILD]) == 0
        print("no newline at the end", end="")
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["[ticklake] before the job", "out 1", "out 2", "no newline at the end"]
    assert captured.err.splitlines() == ["err 1"]
    assert log.path.parent == tmp_path / "logs" and log.path.name.startswith("demo-")
    assert sorted(log.path.read_text().splitlines()) == sorted(
        ["[ticklake] before the job", "out 1", "err 1", "out 2", "no newline at the end"])
    assert logs.current() is None


def test_spark_logs_below_warn_only_into_the_file_unless_verbose(tmp_path):
    with logs.run_log(tmp_path, "backtest", verbose=False) as quiet:
        assert quiet.environment() == {"TICKLAKE_JOB_LOG": str(quiet.path), "TICKLAKE_JOB_CONSOLE_LEVEL": "warn"}
        assert quiet.child_output() is quiet.file
    with logs.run_log(tmp_path, "backtest", verbose=True) as verbose:
        assert verbose.environment()["TICKLAKE_JOB_CONSOLE_LEVEL"] == "info"
        assert verbose.child_output() is None


def test_maven_colour_resets_do_not_reach_the_terminal(tmp_path):
    """Maven 3.8 prints ESC[0m even with -B -q; fetch-jars.sh keeps only its real messages."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mvn"
    fake.write_text("#!/bin/sh\n"
                    'for a; do case "$a" in -DoutputDirectory=*) mkdir -p "${a#*=}";; esac; done\n'
                    "printf '\\033[0m\\033[0m[WARNING] \\033[1ma real message\\033[m\\n\\033[0m\\033[0m'\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TICKLAKE_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([str(ROOT / "infra" / "fetch-jars.sh")], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr + done.stdout
    messages = [line for line in done.stderr.splitlines() if not line.startswith("fetching ")]
    assert messages and set(messages) == {"[WARNING] a real message"}
