"""The local scheduler: runs the ``[[schedule.jobs]]`` of the configuration when they are due.

Each run is a subprocess started in the project directory, with its output in a log file of
its own (``<schedule.log_dir>/<job>/<start time>.log``) and a line in the run history
(``<schedule.log_dir>/runs.jsonl``: job, times, exit code, outcome, log file). A failed run
is logged with its exit code and counted in the metrics; the next due run starts as usual.

Outcomes: ``success`` (exit code 0), ``failure`` (any other), ``timeout`` (killed after the
job's ``timeout_minutes``), ``skipped`` (due while the previous run of the same job was still
running or waiting: runs of one job never overlap), ``stopped`` (the runner was stopped).
At most ``schedule.max_parallel`` jobs run at once; due jobs beyond that wait their turn.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from ticklake.config import PROJECT_ROOT, ScheduledJob, ScheduleSettings, Settings
from ticklake.cron import longest_gap_seconds, next_time
from ticklake.errors import UserError
from ticklake.processes import terminate_groups

log = logging.getLogger("ticklake.schedule")
KILL_GRACE_SECONDS = 10.0
TIMEOUT_CHECK_SECONDS = 5.0
COMMAND_NOT_FOUND = 127  # the exit code of a run whose command could not start, as a shell's
MAX_SLEEP_SECONDS = 60.0  # look at the clock at least this often (it may jump)


@dataclass
class RunRecord:
    job: str
    command: str
    started_at: str
    finished_at: str
    seconds: float
    exit_code: int | None
    outcome: str
    log_file: str | None


class ScheduleMetrics:
    """Prometheus metrics of the runner, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("ticklake_schedule_runs", "Scheduled runs by job and outcome", ["job", "outcome"],
                            registry=self.registry)
        self.last_success = Gauge("ticklake_schedule_last_success_timestamp_seconds",
                                  "End time of the job's last successful run", ["job"], registry=self.registry)
        self.last_duration = Gauge("ticklake_schedule_last_duration_seconds", "Duration of the job's last run",
                                   ["job"], registry=self.registry)
        self.last_exit_code = Gauge("ticklake_schedule_last_exit_code", "Exit code of the job's last run",
                                    ["job"], registry=self.registry)
        self.running = Gauge("ticklake_schedule_running", "1 while the job runs", ["job"], registry=self.registry)
        self.next_run = Gauge("ticklake_schedule_next_run_timestamp_seconds", "When the job is due next",
                              ["job"], registry=self.registry)
        self.period = Gauge("ticklake_schedule_period_seconds", "Longest time between two due times of the job",
                            ["job"], registry=self.registry)
        self.timeout = Gauge("ticklake_schedule_timeout_seconds", "How long a run of the job may take",
                             ["job"], registry=self.registry)
        self.since = Gauge("ticklake_schedule_since_timestamp_seconds", "When this scheduler began to run the job",
                           ["job"], registry=self.registry)

    def describe(self, job: ScheduledJob, timezone: str, now: datetime, last_success: RunRecord | None) -> None:
        """What the ScheduledJobOverdue alert needs: the job's period and timeout, and its last
        success (from the history, so a restarted scheduler still knows it) or, without one,
        since when it has been waited for."""
        self.period.labels(job.name).set(longest_gap_seconds(job.cron, now, timezone))
        self.timeout.labels(job.name).set(job.timeout_minutes * 60)
        self.since.labels(job.name).set(now.timestamp())
        if last_success:
            self.last_success.labels(job.name).set(datetime.fromisoformat(last_success.finished_at).timestamp())

    def record(self, run: RunRecord) -> None:
        self.runs.labels(run.job, run.outcome).inc()
        if run.outcome == "skipped":
            return
        self.running.labels(run.job).set(0)
        self.last_duration.labels(run.job).set(run.seconds)
        if run.exit_code is not None:
            self.last_exit_code.labels(run.job).set(run.exit_code)
        if run.outcome == "success":
            self.last_success.labels(run.job).set(datetime.fromisoformat(run.finished_at).timestamp())


def child_environment() -> dict[str, str]:
    """Our environment, with this Python's bin folder first on PATH: ``ticklake`` and ``python``
    in a job's command are the ones of the environment the scheduler runs in."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}


@dataclass
class Launched:
    job: ScheduledJob
    process: subprocess.Popen
    started_at: datetime
    started: float
    log_file: Path
    ended: float | None = None  # set by the watcher the moment the process exits

    def watch(self, wake: threading.Event) -> None:
        """Note the exit time as it happens (exact durations) and wake the runner."""
        def wait() -> None:
            self.process.wait()
            self.ended = time.monotonic()
            wake.set()

        threading.Thread(target=wait, name=f"watch-{self.job.name}", daemon=True).start()

    def finish(self, outcome: str | None = None) -> RunRecord:
        code = self.process.returncode
        outcome = outcome or ("success" if code == 0 else "failure")
        seconds = (self.ended or time.monotonic()) - self.started
        return RunRecord(self.job.name, self.job.command, self.started_at.isoformat(),
                         (self.started_at + timedelta(seconds=seconds)).isoformat(), round(seconds, 3), code,
                         outcome, str(self.log_file))

    def overdue(self) -> bool:
        return time.monotonic() - self.started > self.job.timeout_minutes * 60

    def kill(self) -> None:
        """SIGTERM to the run's whole process group (spark-submit starts a JVM), then SIGKILL."""
        terminate_groups([self.process.pid], KILL_GRACE_SECONDS)
        self.process.wait()


class LaunchFailed(Exception):
    """The command could not be started at all (not found, not executable)."""

    def __init__(self, run: RunRecord) -> None:
        super().__init__(run.job)
        self.run = run


def launch(job: ScheduledJob, log_dir: Path) -> Launched:
    started_at = datetime.now(timezone.utc)
    log_file = log_dir / job.name / f"{started_at:%Y%m%dT%H%M%S.%fZ}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as out:
        out.write(f"# {started_at.isoformat()} {job.name}: {job.command}\n")
        out.flush()
        try:
            process = subprocess.Popen(shlex.split(job.command), cwd=PROJECT_ROOT, env=child_environment(),
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        except OSError as error:
            out.write(f"could not start: {error}\n")
            now = started_at.isoformat()
            raise LaunchFailed(RunRecord(job.name, job.command, now, now, 0.0, COMMAND_NOT_FOUND, "failure",
                                         str(log_file))) from None
    log.info("%s: started (pid %d): %s; log %s", job.name, process.pid, job.command, log_file)
    return Launched(job, process, started_at, time.monotonic(), log_file)


class History:
    """The run history, one JSON line per run."""

    def __init__(self, log_dir: Path) -> None:
        self.path = log_dir / "runs.jsonl"

    def append(self, run: RunRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(asdict(run)) + "\n")

    def runs(self) -> list[RunRecord]:
        if not self.path.exists():
            return []
        return [RunRecord(**json.loads(line)) for line in self.path.read_text().splitlines() if line.strip()]

    def last_runs(self, outcome: str | None = None) -> dict[str, RunRecord]:
        """Job -> its last run (of that ``outcome``, if given)."""
        return {run.job: run for run in self.runs() if outcome is None or run.outcome == outcome}


def report(run: RunRecord, history: History, metrics: ScheduleMetrics | None = None) -> None:
    history.append(run)
    if metrics:
        metrics.record(run)
    if run.outcome == "success":
        log.info("%s: succeeded in %.1f s; log %s", run.job, run.seconds, run.log_file)
    elif run.outcome == "skipped":
        log.warning("%s: skipped, the previous run has not finished", run.job)
    else:
        log.error("%s: %s with exit code %s after %.1f s; log %s", run.job, run.outcome, run.exit_code,
                  run.seconds, run.log_file)


def run_now(job: ScheduledJob, log_dir: Path) -> RunRecord:
    """Run ``job`` once in the foreground (``ticklake schedule exec``, crontab lines)."""
    try:
        launched = launch(job, log_dir)
    except LaunchFailed as failed:
        report(failed.run, History(log_dir))
        return failed.run
    try:
        launched.process.wait(job.timeout_minutes * 60)
        run = launched.finish()
    except subprocess.TimeoutExpired:
        launched.kill()
        run = launched.finish("timeout")
    except KeyboardInterrupt:
        launched.kill()
        run = launched.finish("stopped")
    report(run, History(log_dir))
    return run


class Runner:
    """Starts due jobs and reaps finished ones; ``tick`` does one round at a given time."""

    def __init__(self, schedule: ScheduleSettings, now: datetime, metrics: ScheduleMetrics | None = None) -> None:
        self.schedule = schedule
        self.metrics = metrics or ScheduleMetrics()
        self.history = History(schedule.log_dir)
        self.jobs = {job.name: job for job in schedule.jobs}
        self.next_due = {name: self._next(job, now) for name, job in self.jobs.items()}
        successes = self.history.last_runs("success")
        for job in schedule.jobs:
            self.metrics.describe(job, schedule.timezone, now, successes.get(job.name))
        self.waiting: deque[str] = deque()
        self.running: dict[str, Launched] = {}
        self.wake = threading.Event()  # a run ended, or stop was asked for
        self.stopping = threading.Event()

    def _next(self, job: ScheduledJob, after: datetime) -> datetime:
        due = next_time(job.cron, after, self.schedule.timezone)
        self.metrics.next_run.labels(job.name).set(due.timestamp())
        return due

    def tick(self, now: datetime) -> list[RunRecord]:
        """Reap finished and overdue runs, queue the jobs due at ``now``, start what may start.

        A job due several times since the last tick (the machine slept) runs once."""
        self.wake.clear()
        done = self._reap()
        for name, job in self.jobs.items():
            if self.next_due[name] > now:
                continue
            self.next_due[name] = self._next(job, now)
            if name in self.running or name in self.waiting:
                done.append(self._skipped(job, now))
            else:
                self.waiting.append(name)
        for run in done:
            report(run, self.history, self.metrics)
        while self.waiting and len(self.running) < self.schedule.max_parallel:
            name = self.waiting.popleft()
            try:
                self.running[name] = launch(self.jobs[name], self.schedule.log_dir)
            except LaunchFailed as failed:
                report(failed.run, self.history, self.metrics)
                done.append(failed.run)
                continue
            self.running[name].watch(self.wake)
            self.metrics.running.labels(name).set(1)
        return done

    def _reap(self) -> list[RunRecord]:
        done = []
        for name, launched in list(self.running.items()):
            if launched.ended is not None:
                done.append(launched.finish())
            elif launched.overdue():
                launched.kill()
                done.append(launched.finish("timeout"))
            else:
                continue
            del self.running[name]
        return done

    def _skipped(self, job: ScheduledJob, now: datetime) -> RunRecord:
        return RunRecord(job.name, job.command, now.isoformat(), now.isoformat(), 0.0, None, "skipped", None)

    def seconds_to_wait(self, now: datetime) -> float:
        """Until the next due time (a run that ends wakes the runner earlier), or until a
        running job's timeout is checked again."""
        until_due = min((due - now).total_seconds() for due in self.next_due.values()) if self.next_due else MAX_SLEEP_SECONDS
        return max(0.0, min(until_due, TIMEOUT_CHECK_SECONDS if self.running else MAX_SLEEP_SECONDS))

    def stop(self) -> list[RunRecord]:
        """Stop running jobs (their runs are recorded as stopped) and forget waiting ones."""
        stopped = []
        for launched in self.running.values():
            launched.kill()
            stopped.append(launched.finish("stopped"))
        self.running.clear()
        self.waiting.clear()
        for run in stopped:
            report(run, self.history, self.metrics)
        return stopped

    def request_stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def run(self, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        """Tick until ``request_stop``, sleeping in between; then stop what still runs."""
        try:
            while not self.stopping.is_set():
                self.tick(clock())
                self.wake.wait(self.seconds_to_wait(clock()))
        finally:
            self.stop()


def serve(settings: Settings) -> None:
    """``ticklake schedule run``: the runner in the foreground until SIGINT or SIGTERM."""
    from ticklake.monitoring.targets import serve_metrics

    schedule = settings.schedule
    if not schedule.jobs:
        raise UserError("no jobs to run: add [[schedule.jobs]] entries to the configuration (see conf/ticklake.toml)")
    metrics = ScheduleMetrics()
    serve_metrics(settings, "scheduler", metrics.registry, schedule.metrics_host, schedule.metrics_port)
    runner = Runner(schedule, datetime.now(timezone.utc), metrics)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: runner.request_stop())
    for name, due in runner.next_due.items():
        log.info("%s: next run %s", name, due.isoformat())
    runner.run()
    log.info("scheduler stopped")


def job_named(schedule: ScheduleSettings, name: str) -> ScheduledJob:
    for job in schedule.jobs:
        if job.name == name:
            return job
    raise UserError(f"no scheduled job {name!r}; the jobs are: {', '.join(j.name for j in schedule.jobs) or 'none'}")


def overview(schedule: ScheduleSettings, now: datetime) -> list:
    """One row per job: its cron line, next run, and how its last run went."""
    from types import SimpleNamespace

    last = History(schedule.log_dir).last_runs()
    rows = []
    for job in schedule.jobs:
        run = last.get(job.name)
        rows.append(SimpleNamespace(
            job=job.name, cron=job.cron, next_run=next_time(job.cron, now, schedule.timezone).isoformat(timespec="minutes"),
            last_run=run.started_at[:16] if run else "-", outcome=run.outcome if run else "-",
            exit_code="-" if run is None or run.exit_code is None else run.exit_code, command=job.command))
    return rows


def crontab(schedule: ScheduleSettings, config: Path) -> str:
    """Crontab lines that run each job through ``ticklake schedule exec`` (same logs and history)."""
    ticklake = Path(sys.executable).parent / "ticklake"
    lines = ["# ticklake schedule, generated by 'ticklake schedule crontab'; install with: crontab FILE",
             f"CRON_TZ={schedule.timezone}", f"TICKLAKE_CONFIG={config}"]
    for job in schedule.jobs:
        lines += [f"# {job.name}: {job.command}",
                  f"{job.cron} cd {shlex.quote(str(PROJECT_ROOT))} && {shlex.quote(str(ticklake))} schedule exec {job.name}"]
    return "\n".join(lines) + "\n"
