"""Launch and operate the real-time job (jobs/flink_realtime.py) in PyFlink's environment.

``start`` runs it in the background (its own process session; pid file, options and logs in
``flink.state_dir``), resuming from the newest checkpoint or savepoint there; ``stop`` stops it
with a savepoint through the mini-cluster's REST API (the sinks commit on it); ``status`` and
``log_tail`` look at it. ``run_bounded`` runs it in the foreground over what the trades topic
holds at its start (tests, the demo); ``explain`` prints its plan.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jobs.flink_runner import FLINK_PYTHON, FLINK_VENV, _failure_summary, check_kafka, connector_jar
from schemas.derive import columns
from schemas.models import Trade
from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError
from ticklake.java import java_home
from ticklake.processes import command_line, group_alive, processes, signal_groups, terminate_groups, \
    wait_groups_gone
from ticklake.security import flink_environment, flink_kafka_properties

JOB = PROJECT_ROOT / "jobs" / "flink_realtime.py"
MAIN_CLASS = "PythonGatewayServer"  # PyFlink's gateway JVM, which runs the mini-cluster


def paths(settings: Settings) -> dict[str, Path]:
    root = settings.flink.state_dir
    return {name: root / rel for name, rel in {
        "checkpoints": "checkpoints", "savepoints": "savepoints", "logs": "logs", "pid": "realtime.pid",
        "options": "realtime-options.json", "driver_log": "logs/realtime-driver.log", "lib": "lib"}.items()}


def newest_snapshot(settings: Settings) -> Path | None:
    """The newest complete checkpoint or savepoint (a folder with ``_metadata``) of earlier runs."""
    p = paths(settings)
    found = [*p["checkpoints"].glob("*/chk-*/_metadata"), *p["savepoints"].glob("savepoint-*/_metadata")]
    return max(found, key=lambda m: m.stat().st_mtime).parent if found else None


def prune_snapshots(settings: Settings, keep: Path | None) -> None:
    """Delete the checkpoints of earlier runs but the one to resume from: each run resumes
    without claiming it, so the old ones are no longer needed once a newer one exists."""
    import shutil

    p = paths(settings)
    for folder in [*p["checkpoints"].glob("*"), *p["savepoints"].glob("savepoint-*")]:
        if keep is None or keep not in (folder, *folder.glob("chk-*")):
            shutil.rmtree(folder, ignore_errors=True)


def group_id(settings: Settings) -> str:
    """The job's Kafka consumer group: it commits the offsets of each completed checkpoint."""
    return f"ticklake-flink-{settings.kafka.trades_topic}"


def job_options(settings: Settings, bounded: bool = False, restore: Path | None = None) -> dict:
    f, k = settings.flink, settings.kafka
    p = paths(settings)
    fields = {c.name: c.kind for c in columns(Trade) if not c.is_list}
    return {
        "job_name": f"ticklake-realtime {k.trades_topic}",
        "connector_jar_url": connector_jar(settings).as_uri(),
        "bootstrap_servers": k.bootstrap_servers, "kafka_properties": flink_kafka_properties(settings),
        "trades_topic": k.trades_topic, "bars_topic": f.bars_topic, "alerts_topic": f.alerts_topic,
        "rejects_topic": f.rejects_topic,
        "group_id": group_id(settings),
        "transactional_id_prefix": f"ticklake-flink-{k.trades_topic}",
        "startup_mode": f.startup_mode, "bounded": bounded, "fields": fields,
        "watermark_ms": f.watermark_ms, "idle_timeout_ms": f.idle_timeout_ms,
        "state_ttl_ms": int(f.state_ttl_hours * 3_600_000),
        "checkpoint_interval_ms": f.checkpoint_interval_ms, "unaligned_checkpoints": f.unaligned_checkpoints,
        "checkpoint_dir_url": p["checkpoints"].as_uri(), "savepoint_dir_url": p["savepoints"].as_uri(),
        "restore_path": str(restore) if restore else None,
        "delivery_guarantee": f.delivery_guarantee, "transaction_timeout_ms": f.transaction_timeout_ms,
        "mini_batch_ms": f.mini_batch_ms, "watermark_interval_ms": f.watermark_interval_ms,
        "buffer_timeout_ms": f.buffer_timeout_ms, "parallelism": f.parallelism,
        "metrics_port": f.metrics_port, "metrics_host": f.metrics_host, "rest_port": f.rest_port,
        "rules": {name: rule.model_dump() for name, rule in f.rules().items()},
    }


def pyflink_home() -> Path:
    homes = sorted(FLINK_VENV.glob("lib/python3*/site-packages/pyflink"))
    if not homes:
        raise UserError(f"PyFlink is not installed in {FLINK_VENV}: run infra/bootstrap.sh")
    return homes[-1]


def flink_lib(settings: Settings) -> Path:
    """PyFlink's lib/ plus ticklake's jars of the cluster's classpath (the Prometheus reporter,
    which loads when the mini-cluster starts, and the trades' format), as links in one folder for
    FLINK_LIB_DIR."""
    lib = paths(settings)["lib"]
    lib.mkdir(parents=True, exist_ok=True)
    wanted = {jar.name: jar for jar in (pyflink_home() / "lib").glob("*.jar")}
    wanted |= {jar.name: jar for jar in (settings.jars_dir / "flink-lib").glob("*.jar")}
    if not {"ticklake-loopback-reporter.jar", "ticklake-trade-format.jar"} <= set(wanted) or \
            not any(name.startswith("flink-metrics-prometheus") for name in wanted):
        raise UserError(f"no Prometheus reporter or trade format in {settings.jars_dir / 'flink-lib'}: "
                        "run infra/bootstrap.sh")
    for link in lib.iterdir():
        if link.name not in wanted or link.resolve() != wanted[link.name].resolve():
            link.unlink()
    for name, jar in wanted.items():
        if not (lib / name).exists():
            (lib / name).symlink_to(jar)
    return lib


def _environment(settings: Settings) -> dict[str, str]:
    """The job's process environment: PyFlink's, with the cluster's lib/ and the heap."""
    if not FLINK_PYTHON.exists():
        raise UserError(f"PyFlink's environment {FLINK_VENV} is missing: run infra/bootstrap.sh")
    p = paths(settings)
    for folder in ("checkpoints", "savepoints", "logs"):
        p[folder].mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # PyFlink takes FLINK_LIB_DIR only beside FLINK_HOME (else it sets its own lib/).
    env.update(JAVA_HOME=java_home(), FLINK_LOG_DIR=str(p["logs"]), FLINK_HOME=str(pyflink_home()),
               FLINK_LIB_DIR=str(flink_lib(settings)), **flink_environment(settings),
               JVM_ARGS=" ".join([f"-Xmx{settings.flink.heap}", *env.get("JVM_ARGS", "").split()]))
    return env


def _launch(settings: Settings, bounded: bool) -> tuple[list[str], dict[str, str]]:
    env = _environment(settings)
    check_kafka(settings.kafka.bootstrap_servers)
    p = paths(settings)
    restore = newest_snapshot(settings)
    prune_snapshots(settings, restore)
    p["options"].write_text(json.dumps(job_options(settings, bounded, restore), indent=2))
    return [str(FLINK_PYTHON), str(JOB), "--options", str(p["options"])], env


def explain(settings: Settings, timeout: float = 300) -> str:
    """Flink's plan of the job's statements (``EXPLAIN``: the abstract syntax tree, the optimized
    physical plan, the optimized execution plan), without running it or reaching Kafka."""
    import tempfile

    env = _environment(settings)
    with tempfile.TemporaryDirectory() as folder:
        options = Path(folder) / "options.json"
        options.write_text(json.dumps(job_options(settings)))
        done = subprocess.run([str(FLINK_PYTHON), str(JOB), "--options", str(options), "--explain"], cwd=PROJECT_ROOT,
                              env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise UserError(f"the real-time job's plan failed (exit {done.returncode}): {_failure_summary(done.stderr)}")
    return done.stdout


def run_bounded(settings: Settings, timeout: float = 600) -> None:
    """Run the job over the trades topic up to its offsets at the start, in the foreground;
    its outputs are committed when it returns. Raises ``UserError`` when it fails."""
    command, env = _launch(settings, bounded=True)
    log = paths(settings)["driver_log"]
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        if not wait_groups_gone([proc.pid], 60 if proc.returncode is not None else 0):
            signal_groups([proc.pid], signal.SIGKILL)
            proc.wait()
            wait_groups_gone([proc.pid], 10)
            raise UserError(f"the real-time job took more than {timeout:.0f} s; its log: {log}")
    if proc.returncode != 0:
        raise UserError(f"the real-time job failed (exit {proc.returncode}): {_failure_summary(log.read_text())}\n"
                        f"its log: {log}")


@dataclass
class Status:
    pid: int | None
    running: bool
    job: dict | None  # the mini-cluster's job overview, when it answers
    checkpoint: dict | None  # the latest completed checkpoint
    log: Path


def _rest(settings: Settings, path: str, body: dict | None = None, timeout: float = 5.0) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{settings.flink.rest_port}{path}", method="POST" if body is not None else "GET",
        data=json.dumps(body).encode() if body is not None else None, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _running_job(settings: Settings) -> dict | None:
    with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
        jobs = _rest(settings, "/jobs/overview")["jobs"]
        live = [j for j in jobs if j["state"] in ("RUNNING", "CREATED", "RESTARTING", "INITIALIZING")]
        return live[0] if live else None
    return None


def _pid(settings: Settings) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(paths(settings)["pid"].read_text())
        return pid if group_alive(pid) else None
    return None


def status(settings: Settings) -> Status:
    pid = _pid(settings)
    job = _running_job(settings) if pid else None
    checkpoint = None
    if job:
        with contextlib.suppress(OSError, ValueError, KeyError, urllib.error.URLError):
            checkpoint = _rest(settings, f"/jobs/{job['jid']}/checkpoints")["latest"]["completed"]
    return Status(pid, pid is not None, job, checkpoint, paths(settings)["driver_log"])


def start(settings: Settings, wait_running: float = 180) -> Status:
    """Start the job in the background (nothing happens when it runs already) and wait until
    the mini-cluster reports it running."""
    current = status(settings)
    if current.running:
        return current
    command, env = _launch(settings, bounded=False)
    p = paths(settings)
    with open(p["driver_log"], "a") as out:
        proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    p["pid"].write_text(str(proc.pid))
    deadline = time.monotonic() + wait_running
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"the real-time job stopped at its start (exit {proc.returncode}): "
                            f"{_failure_summary(p['driver_log'].read_text())}\nits log: {p['driver_log']}")
        job = _running_job(settings)
        if job and job["state"] == "RUNNING":
            return status(settings)
        time.sleep(1)
    raise UserError(f"the real-time job is not running after {wait_running:.0f} s; its log: {p['driver_log']}")


def stop(settings: Settings, timeout: float = 120) -> str:
    """Stop the job with a savepoint (its sinks commit on it), or, when that fails, end its
    processes (a restart resumes from the last checkpoint). Returns what happened."""
    pid = _pid(settings)
    if pid is None:
        return "not running"
    job = _running_job(settings)
    how = "stopped with a savepoint"
    if job:
        with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
            _rest(settings, f"/jobs/{job['jid']}/stop",
                  {"drain": False, "targetDirectory": paths(settings)["savepoints"].as_uri()})
    if not wait_groups_gone([pid], timeout if job else 0):
        how = "ended (it resumes from its last checkpoint)"
        terminate_groups([pid], 30)
    paths(settings)["pid"].unlink(missing_ok=True)
    return how


def gateway_pid(settings: Settings) -> int | None:
    """The pid of the job's JVM (PyFlink's gateway, which holds the mini-cluster)."""
    pid = _pid(settings)
    if pid is None:
        return None
    for member, fields in processes():
        if int(fields[2]) == pid and any(MAIN_CLASS.encode() in arg for arg in command_line(member) or []):
            return member
    return None


def log_tail(settings: Settings, lines: int = 50) -> str:
    """The end of the driver's output and of Flink's own log."""
    p = paths(settings)
    parts = []
    for log in [p["driver_log"], *sorted(p["logs"].glob("flink-*.log"))]:
        with contextlib.suppress(OSError):
            text = log.read_text(errors="replace").splitlines()
            parts.append(f"==> {log} <==\n" + "\n".join(text[-lines:]))
    return "\n\n".join(parts) or f"(no logs in {p['logs']})"
