"""Launch the PyFlink smoke job (jobs/flink_smoke.py) in PyFlink's own environment
(.venv-flink) from ticklake's, and read its result back.

apache-flink pins an old pyarrow, so it never shares .venv; the job gets everything it
needs on its command line, including the column list derived from ``schemas.models.Trade``.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from schemas.derive import flink_columns
from schemas.models import Trade
from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError
from ticklake.java import java_home
from ticklake.processes import signal_groups, wait_groups_gone

FLINK_VENV = PROJECT_ROOT / ".venv-flink"
FLINK_PYTHON = FLINK_VENV / "bin" / "python"
SMOKE_JOB = PROJECT_ROOT / "jobs" / "flink_smoke.py"
# PyFlink's JVM runs a short job: the C1 compiler alone and the serial collector more than
# halve its start on a small machine (docs/FLINK.md has the measurements).
FAST_JVM_ARGS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx1g"]
STALE_PENDING_SECONDS = 600
# The gateway JVM exits once its Python driver has; writing the class archive takes longer.
JVM_EXIT_SECONDS = 120


def connector_jar(settings: Settings) -> Path:
    jars = sorted((settings.jars_dir / "flink").glob("flink-sql-connector-kafka-*.jar"))
    if not jars:
        raise UserError(f"no Flink Kafka connector in {settings.jars_dir / 'flink'}: run infra/bootstrap.sh")
    return jars[-1]


def flink_command(settings: Settings, out_path: Path) -> list[str]:
    if not FLINK_PYTHON.exists():
        raise UserError(f"PyFlink's environment {FLINK_VENV} is missing: run infra/bootstrap.sh")
    return [
        str(FLINK_PYTHON), str(SMOKE_JOB),
        "--bootstrap-servers", settings.kafka.bootstrap_servers,
        "--topic", settings.kafka.trades_topic,
        "--jar", str(connector_jar(settings)),
        "--columns", flink_columns(Trade),
        "--out", str(out_path),
    ]


def class_archive_args(settings: Settings, java: str) -> tuple[list[str], Path | None]:
    """JVM flags for a class-data-sharing archive of the gateway JVM's classes, which saves
    it about 2 s a start, and the archive's path when this run is the one to write it.

    The first run dumps the archive as its JVM exits; later runs map it. A stale or broken
    archive is ignored by the JVM, and each JDK and Flink build gets its own.
    """
    flink_jars = sorted(p.name for p in FLINK_VENV.glob("lib/python3*/site-packages/pyflink/lib/*.jar"))
    key = hashlib.sha256(f"{Path(java).resolve()}|{'|'.join(flink_jars)}".encode()).hexdigest()[:12]
    archive = settings.cache_dir / "flink" / f"classes-{key}.jsa"
    quiet = ["-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    if archive.exists():
        return [f"-XX:SharedArchiveFile={archive}", *quiet], None
    archive.parent.mkdir(parents=True, exist_ok=True)
    pending = archive.with_suffix(".pending")  # one run writes it; concurrent runs go without
    try:
        if time.time() - pending.stat().st_mtime > STALE_PENDING_SECONDS:
            pending.unlink(missing_ok=True)  # that run never finished
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(pending, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return [], None
    return [f"-XX:ArchiveClassesAtExit={archive}", *quiet], archive


def check_kafka(bootstrap_servers: str, timeout: float = 3.0) -> None:
    """Fail at once when no bootstrap server answers: Flink's Kafka source would wait a
    minute and then fail with a page of Java stack trace."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
            return
        except (OSError, ValueError):
            continue
    raise UserError(f"Kafka is not reachable at {bootstrap_servers}: start it with 'ticklake up'")


def _failure_summary(stderr: str) -> str:
    """The root cause of a failed PyFlink job: the last Java ``Caused by:`` or Python error line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("Caused by:")]
    if causes:
        return causes[-1].removeprefix("Caused by:").strip()
    return lines[-1] if lines else "(no output)"


def run_flink_smoke(settings: Settings, out_path: Path, timeout: float = 300) -> dict[str, dict]:
    """Run the smoke job over the whole trades topic (as it is when the job starts) and return
    ``{symbol: {"trades": count, "low": min price, "high": max price}}``.

    The JSON lines also stay in ``out_path``; Flink's own log goes to
    ``<state_dir>/flink/logs``. Raises ``UserError`` when the job fails or outlives ``timeout``.
    """
    out_path = Path(out_path)
    command = flink_command(settings, out_path)
    home = java_home()
    check_kafka(settings.kafka.bootstrap_servers)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.unlink(missing_ok=True)  # never read a previous run's result
    log_dir = settings.state_dir / "flink" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    archive_args, new_archive = class_archive_args(settings, str(Path(home) / "bin" / "java"))
    jvm_args = FAST_JVM_ARGS + archive_args
    env.update(
        JAVA_HOME=home,
        FLINK_LOG_DIR=str(log_dir),
        JVM_ARGS=" ".join(jvm_args + env.get("JVM_ARGS", "").split()),  # the caller's flags win
    )
    # Its own session: a timeout takes the gateway JVM down with the Python driver, and the
    # run is over once the whole session is gone. No pipes: the JVM would hold them open.
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            finished = wait_groups_gone([proc.pid], JVM_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            finished = None
        if not finished:
            signal_groups([proc.pid], signal.SIGKILL)
            proc.wait()
            wait_groups_gone([proc.pid], 10)
            if new_archive:
                new_archive.unlink(missing_ok=True)  # possibly half written
        if new_archive:
            new_archive.with_suffix(".pending").unlink(missing_ok=True)
        if finished is None:
            raise UserError(f"the PyFlink smoke job took more than {timeout:.0f} s; Flink's log is in {log_dir}")
        if proc.returncode != 0 or not out_path.exists():
            stderr.seek(0)
            text = stderr.read()
            if "UnknownTopicOrPartitionException" in text:
                raise UserError(f"the topic {settings.kafka.trades_topic} does not exist: run 'ticklake up'")
            raise UserError(f"the PyFlink smoke job failed (exit {proc.returncode}): {_failure_summary(text)}\n"
                            f"Flink's log is in {log_dir}; the job's last output:\n{text[-2000:]}")
    rows = [json.loads(line) for line in out_path.read_text().splitlines() if line.strip()]
    return {row.pop("symbol"): row for row in rows}
