"""Quiet commands: a job's output reaches the terminal and the run log; helpers' and the Kafka
clients' only the log."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
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


def _records_through_the_terminal_handler(tmp_path, verbose: bool):
    handler = logs.TerminalHandler()
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    loggers = [logging.getLogger(name) for name in ("kafka.conn", "librdkafka", "ticklake.demo")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with logs.run_log(tmp_path, "demo", verbose=verbose) as log:
            for logger in loggers:
                logger.error("%s says hello", logger.name)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    return log.path.read_text()


def test_kafka_clients_records_go_only_into_the_run_log(tmp_path, capsys):
    logged = _records_through_the_terminal_handler(tmp_path, verbose=False)
    terminal = capsys.readouterr().err
    assert "ticklake.demo says hello" in terminal
    assert "kafka.conn" not in terminal and "librdkafka" not in terminal
    assert all(f"ERROR {name}: {name} says hello" in logged for name in ("kafka.conn", "librdkafka", "ticklake.demo"))


def test_verbose_shows_the_kafka_clients_records_too(tmp_path, capsys):
    _records_through_the_terminal_handler(tmp_path, verbose=True)
    terminal = capsys.readouterr().err
    assert all(f"{name} says hello" in terminal for name in ("kafka.conn", "librdkafka", "ticklake.demo"))


def test_without_a_run_log_the_terminal_gets_every_record(capsys):
    handler = logs.TerminalHandler()
    logger = logging.getLogger("kafka.cluster")
    logger.addHandler(handler)
    try:
        logger.error("Metadata refresh failed")
    finally:
        logger.removeHandler(handler)
    assert "Metadata refresh failed" in capsys.readouterr().err


def test_librdkafka_logs_through_python_logging_not_on_stderr(caplog, capfd):
    """A real librdkafka client whose broker is not there: its complaints are log records."""
    from confluent_kafka import Producer

    caplog.set_level(logging.WARNING, logger=logs.LIBRDKAFKA)
    producer = Producer({"bootstrap.servers": "127.0.0.1:1", "reconnect.backoff.ms": 100,
                         "client.id": "ticklake-test", **logs.librdkafka_logging()})
    deadline = time.monotonic() + 10
    while not caplog.records and time.monotonic() < deadline:
        producer.poll(0.2)
    assert [r for r in caplog.records if r.name == logs.LIBRDKAFKA and "127.0.0.1:1" in r.getMessage()]
    assert "%3|" not in capfd.readouterr().err
