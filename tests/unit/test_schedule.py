"""The local scheduler on real subprocesses with a stepped clock: failures are logged,
counted and do not stop the next runs; overlapping runs are skipped; timeouts kill."""
from __future__ import annotations

import json
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import yaml

from ticklake import cli
from ticklake.config import ScheduledJob, ScheduleSettings, Settings
from ticklake.k8s import cronjob, manifests
from ticklake.schedule import Runner, crontab

T0 = datetime(2026, 11, 23, 10, 0, 30, tzinfo=timezone.utc)
PY = sys.executable
FAIL = f"{PY} -c 'import sys; print(\"boom\"); sys.exit(3)'"
OK = f"{PY} -c 'print(\"fine\")'"
SLEEP = f"{PY} -c 'import time; time.sleep(60)'"


def plan(tmp_path, *jobs: tuple[str, str], **options) -> ScheduleSettings:
    entries = [ScheduledJob(name=name, cron="* * * * *", command=command, **options) for name, command in jobs]
    return ScheduleSettings(jobs=entries, log_dir=tmp_path, max_parallel=1)


def tick_until_idle(runner: Runner, now: datetime, timeout: float = 30.0) -> list:
    """Tick at ``now`` until nothing runs or waits; the runs that finished meanwhile."""
    done, deadline = [], time.monotonic() + timeout
    while True:
        done += runner.tick(now)
        if not runner.running and not runner.waiting:
            return done
        assert time.monotonic() < deadline, "jobs did not finish"
        time.sleep(0.05)


def sample(runner: Runner, name: str, **labels) -> float | None:
    return runner.metrics.registry.get_sample_value(name, labels)


def test_a_failing_job_is_logged_counted_and_runs_again_next_time(tmp_path):
    runner = Runner(plan(tmp_path, ("fails", FAIL), ("works", OK)), T0)
    assert runner.tick(T0 + timedelta(seconds=20)) == [] and not runner.running  # not due before 10:01

    first = {r.job: r for r in tick_until_idle(runner, T0 + timedelta(seconds=30))}
    assert (first["fails"].outcome, first["fails"].exit_code) == ("failure", 3)
    assert (first["works"].outcome, first["works"].exit_code) == ("success", 0)
    assert "boom" in open(first["fails"].log_file).read()

    second = {r.job: r for r in tick_until_idle(runner, T0 + timedelta(seconds=90))}
    assert second["fails"].outcome == "failure" and second["works"].outcome == "success"
    assert second["fails"].log_file != first["fails"].log_file

    assert sample(runner, "ticklake_schedule_runs_total", job="fails", outcome="failure") == 2
    assert sample(runner, "ticklake_schedule_runs_total", job="works", outcome="success") == 2
    assert sample(runner, "ticklake_schedule_last_exit_code", job="fails") == 3
    assert sample(runner, "ticklake_schedule_last_success_timestamp_seconds", job="fails") is None
    assert sample(runner, "ticklake_schedule_last_success_timestamp_seconds", job="works") > 0
    assert sample(runner, "ticklake_schedule_last_duration_seconds", job="works") > 0
    history = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [(h["job"], h["exit_code"]) for h in history] == [("fails", 3), ("works", 0)] * 2

    later = T0 + timedelta(hours=1)
    restarted = Runner(plan(tmp_path, ("fails", FAIL), ("works", OK)), later)  # knows the last success from the history
    assert sample(restarted, "ticklake_schedule_last_success_timestamp_seconds", job="works") == \
        sample(runner, "ticklake_schedule_last_success_timestamp_seconds", job="works")
    assert sample(restarted, "ticklake_schedule_last_success_timestamp_seconds", job="fails") is None
    assert sample(restarted, "ticklake_schedule_since_timestamp_seconds", job="fails") == later.timestamp()
    assert sample(restarted, "ticklake_schedule_period_seconds", job="fails") == 60
    assert sample(restarted, "ticklake_schedule_timeout_seconds", job="fails") == 120 * 60


def test_a_command_that_cannot_start_is_a_failed_run_not_a_dead_runner(tmp_path):
    runner = Runner(plan(tmp_path, ("typo", "no-such-command-ticklake --x"), ("works", OK)), T0)
    runs = {r.job: r for r in tick_until_idle(runner, T0 + timedelta(seconds=30))}
    assert (runs["typo"].outcome, runs["typo"].exit_code) == ("failure", 127)
    assert "could not start" in open(runs["typo"].log_file).read()
    assert runs["works"].outcome == "success"
    assert sample(runner, "ticklake_schedule_runs_total", job="typo", outcome="failure") == 1


def test_the_loop_runs_due_jobs_and_stops_when_asked(tmp_path):
    runner = Runner(plan(tmp_path, ("fails", FAIL), ("works", OK)), T0)
    history = tmp_path / "runs.jsonl"

    def stop_after_both_runs():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(history.read_text().splitlines() if history.exists() else []) < 2:
            time.sleep(0.05)
        runner.request_stop()

    threading.Thread(target=stop_after_both_runs, daemon=True).start()
    began = time.monotonic()
    runner.run(clock=lambda: T0 + timedelta(seconds=30))  # 10:01:00, both due; next due 10:02
    assert time.monotonic() - began < 20, "a finished run wakes the loop; the stop does too"
    assert [json.loads(line)["outcome"] for line in history.read_text().splitlines()] == ["failure", "success"]


def test_runs_of_one_job_never_overlap_and_the_runner_stops_them(tmp_path):
    runner = Runner(plan(tmp_path, ("slow", SLEEP)), T0)
    runner.tick(T0 + timedelta(seconds=30))
    assert list(runner.running) == ["slow"]
    (skipped,) = runner.tick(T0 + timedelta(seconds=90))
    assert skipped.outcome == "skipped" and list(runner.running) == ["slow"]
    (stopped,) = runner.stop()
    assert stopped.outcome == "stopped" and stopped.exit_code < 0 and not runner.running
    assert sample(runner, "ticklake_schedule_runs_total", job="slow", outcome="skipped") == 1


def test_a_run_past_its_timeout_is_killed(tmp_path):
    runner = Runner(plan(tmp_path, ("stuck", SLEEP), timeout_minutes=0.005), T0)
    (run,) = tick_until_idle(runner, T0 + timedelta(seconds=30))
    assert run.outcome == "timeout" and 0.3 <= run.seconds < 10


def test_exec_runs_one_job_and_list_shows_how_it_went(tmp_path, monkeypatch, capsys):
    jobs = [{"name": "fails", "cron": "0 1 * * *", "command": FAIL}]
    monkeypatch.setenv("TICKLAKE_SCHEDULE__JOBS", json.dumps(jobs))
    monkeypatch.setenv("TICKLAKE_SCHEDULE__LOG_DIR", str(tmp_path))
    assert cli.main(["schedule", "exec", "fails"]) == 3
    assert cli.main(["schedule", "exec", "nope"]) == 2
    capsys.readouterr()
    assert cli.main(["schedule", "list"]) == 0
    (row,) = capsys.readouterr().out.splitlines()[1:]
    assert row.split()[:6] == ["fails", "0", "1", "*", "*", "*"] and " failure " in row and " 3 " in row


def test_crontab_runs_each_job_through_exec(tmp_path):
    text = crontab(plan(tmp_path, ("works", OK)), tmp_path / "ticklake.toml")
    assert "CRON_TZ=UTC\n" in text and f"TICKLAKE_CONFIG={tmp_path / 'ticklake.toml'}\n" in text
    (line,) = [x for x in text.splitlines() if x.startswith("* * * * * ")]
    assert line.endswith("ticklake schedule exec works")


def test_k8s_manifests_are_yaml_and_spark_jobs_get_the_cluster_master(tmp_path):
    schedule = plan(tmp_path, ("rollup", "./spark-submit.sh jobs/rollup_bars.py --days 2"), ("bt", "ticklake backtest x"))
    documents = list(yaml.safe_load_all(manifests(schedule)))
    assert documents == [cronjob(job, schedule) for job in schedule.jobs]
    spark_cmd = documents[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert spark_cmd[:3] == ["./spark-submit.sh", "--master", schedule.kubernetes.spark_master]
    assert spark_cmd[-3:] == ["jobs/rollup_bars.py", "--days", "2"]
    assert documents[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "ticklake", "backtest", "x"]
    assert documents[0]["spec"]["concurrencyPolicy"] == "Forbid" and documents[0]["spec"]["schedule"] == "* * * * *"


def test_committed_manifests_match_the_configuration(monkeypatch):
    monkeypatch.setenv("TICKLAKE_CONFIG", "conf/ticklake.toml")
    with open("infra/k8s/cronjobs.yaml") as committed:
        assert committed.read() == manifests(Settings().schedule), "regenerate: ticklake schedule k8s > infra/k8s/cronjobs.yaml"

