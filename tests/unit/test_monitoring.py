"""The monitoring configuration, alert rules (promtool), the alert receiver and target files;
no running services (promtool and amtool are Debian's programs, run on files)."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from ticklake.config import PROJECT_ROOT
from ticklake.errors import UserError
from ticklake.monitoring.config import (
    RULES_DIR,
    alert_names,
    alertmanager_config,
    duration,
    prometheus_config,
    rendered_rules,
)
from ticklake.monitoring.receiver import firing, make_server
from ticklake.monitoring.targets import announce, scrape_address, targets_dir, withdraw
from ticklake.services.monitoring import AlertmanagerService, AlertReceiverService, PrometheusService

RULE_TESTS = sorted((PROJECT_ROOT / "tests" / "prometheus").glob("*_test.yml"))


@pytest.fixture
def local_settings(settings, tmp_path):
    return settings.model_copy(update={"state_dir": tmp_path / "state"})


def run(*command: str, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_promtool_accepts_the_shipped_rules():
    run("promtool", "check", "rules", *map(str, sorted(RULES_DIR.glob("*.yml"))))


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_of_the_rules_pass(test_file):
    run("promtool", "test", "rules", test_file.name, cwd=test_file.parent)


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_stays_silent():
    fires, silent = set(), set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert set(alert_names()) == fires == silent


def test_every_alert_has_a_runbook_in_the_operations_doc():
    doc = (PROJECT_ROOT / "docs" / "OPERATIONS.md").read_text()
    for group_file in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(group_file.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule["alert"]
                assert f"### {name}\n" in doc, f"docs/OPERATIONS.md has no runbook for {name}"
                assert rule["annotations"]["runbook"] == f"docs/OPERATIONS.md#{name.lower()}"
                assert rule["labels"]["severity"] in ("critical", "warning") and rule["annotations"]["summary"]


def test_durations_are_whole_seconds_or_milliseconds():
    assert duration(15) == "15s" and duration(0.5) == "500ms" and duration(2.25) == "2250ms"


def test_the_rendered_prometheus_config_scrapes_every_endpoint_of_the_settings(local_settings, tmp_path):
    settings = local_settings.model_copy(update={
        "monitoring": local_settings.monitoring.model_copy(update={"extra_targets": {"flink": ["127.0.0.1:9250"]}}),
        "cassandra": local_settings.cassandra.model_copy(update={"metrics_port": 0}),
    })
    config = prometheus_config(settings, tmp_path / "rules")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "alertmanager", "alert-receiver", "kafka", "producer", "stream", "scheduler",
                         "flink"}  # no cassandra: its exporter is off
    assert jobs["kafka"]["static_configs"] == [{"targets": [f"127.0.0.1:{settings.kafka.metrics_port}"]}]
    assert jobs["flink"]["static_configs"] == [{"targets": ["127.0.0.1:9250"]}]  # and its announced ones
    assert jobs["flink"]["file_sd_configs"][0]["files"] == [str(targets_dir(settings, "flink") / "*.json")]
    m = settings.monitoring
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [f"127.0.0.1:{m.alertmanager_port}"]
    assert config["global"]["scrape_interval"] == duration(m.scrape_interval_seconds)


def test_prometheus_config_and_rules_as_rendered_pass_promtool(local_settings):
    service = PrometheusService(local_settings)
    service.home.mkdir(parents=True)
    service.prepare()
    run("promtool", "check", "config", str(service.config_file))
    command = service.command()
    assert f"--web.listen-address=127.0.0.1:{local_settings.monitoring.prometheus_port}" in command
    assert f"--storage.tsdb.path={service.data_dir}" in command and service.marker in command


def test_alertmanager_routes_by_severity_to_the_receiver_and_passes_amtool(local_settings):
    config = alertmanager_config(local_settings)
    port = local_settings.monitoring.receiver_port
    hooks = {r["name"]: r["webhook_configs"][0] for r in config["receivers"]}
    assert hooks == {s: {"url": f"http://127.0.0.1:{port}/webhook/{s}", "send_resolved": True}
                     for s in ("critical", "warning")}
    assert [r["matchers"] for r in config["route"]["routes"]] == [['severity="critical"'], ['severity="warning"']]
    service = AlertmanagerService(local_settings)
    service.home.mkdir(parents=True)
    service.prepare()
    run("amtool", "check-config", str(service.config_file))
    command = service.command()
    assert "--cluster.listen-address=" in command  # no gossip port
    assert f"--web.listen-address=127.0.0.1:{local_settings.monitoring.alertmanager_port}" in command


def test_alert_for_overrides_replace_the_shipped_durations_and_unknown_names_are_refused(local_settings, tmp_path):
    quick = local_settings.model_copy(update={"monitoring": local_settings.monitoring.model_copy(
        update={"alert_for": {"FeedSilent": "5s"}})})
    files = rendered_rules(quick, tmp_path / "rules")
    assert {path.name for path in files} == {path.name for path in RULES_DIR.glob("*.yml")}
    rules = {r["alert"]: r for text in files.values() for g in yaml.safe_load(text)["groups"] for r in g["rules"]}
    assert rules["FeedSilent"]["for"] == "5s" and rules["ProducerDisconnected"]["for"] == "1m"
    assert set(rules) == set(alert_names())
    wrong = quick.model_copy(update={"monitoring": quick.monitoring.model_copy(update={"alert_for": {"FeedSilence": "5s"}})})
    with pytest.raises(UserError, match="FeedSilence.*FeedSilent"):
        rendered_rules(wrong, tmp_path / "rules")


def test_an_endpoint_is_announced_as_a_target_file_until_withdrawn(local_settings):
    path = announce(local_settings, "producer", "0.0.0.0", 9464)
    assert path.parent == targets_dir(local_settings, "producer")
    [entry] = json.loads(path.read_text())
    assert entry["targets"] == ["127.0.0.1:9464"] and entry["labels"]["announced_by"].isdigit()
    withdraw(path)
    assert not path.exists()
    kept = announce(local_settings, "flink", "127.0.0.1", 9250, until_exit=False)  # a detached job's launcher
    assert kept == targets_dir(local_settings, "flink") / "9250.json" and kept.exists()
    assert scrape_address("10.1.2.3", 80) == "10.1.2.3:80"


def test_a_served_endpoint_binds_its_host_and_is_announced(local_settings):
    from prometheus_client import CollectorRegistry, Counter

    from ticklake.services.process import free_port
    from ticklake.monitoring.targets import serve_metrics

    registry = CollectorRegistry()
    Counter("ticklake_test_things", "things", registry=registry).inc()
    port = free_port()
    serve_metrics(local_settings, "scheduler", registry, "127.0.0.1", port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert "ticklake_test_things_total 1.0" in response.read().decode()
    [entry] = json.loads((targets_dir(local_settings, "scheduler") / f"{port}.json").read_text())
    assert entry["targets"] == [f"127.0.0.1:{port}"]
    serve_metrics(local_settings, "producer", registry, "127.0.0.1", 0)  # port 0: nothing served or announced
    assert not targets_dir(local_settings, "producer").exists()


def test_ticklake_alerts_ops_prints_what_fires(receiver, monkeypatch, capsys):
    from ticklake.cli import main

    port = receiver()
    monkeypatch.setenv("TICKLAKE_MONITORING__RECEIVER_PORT", str(port))
    assert main(["alerts", "--ops"]) == 0
    assert capsys.readouterr().out == "no alerts firing\n"
    post(port, "/webhook/critical", json.dumps(notification("firing", "a1")).encode())
    assert main(["alerts", "--ops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "1 alert firing:" and lines[1].split() == ["alert", "severity", "since", "instance", "summary"]
    assert lines[2].split() == ["FeedSilent", "critical", "2026-12-01", "20:00:00", "127.0.0.1:9464", "silent"]
    monkeypatch.setenv("TICKLAKE_MONITORING__RECEIVER_PORT", "1")
    assert main(["alerts", "--ops"]) == 2
    error = capsys.readouterr().err
    assert "alert receiver on 127.0.0.1:1 does not answer" in error and "'ticklake up' starts it" in error


def notification(status: str, fingerprint: str, alertname: str = "FeedSilent") -> dict:
    return {"version": "4", "status": status, "receiver": "critical", "groupKey": "{}:{}", "alerts": [
        {"status": status, "fingerprint": fingerprint, "startsAt": "2026-12-01T20:00:00.000Z",
         "labels": {"alertname": alertname, "severity": "critical", "instance": "127.0.0.1:9464"},
         "annotations": {"summary": "silent"}}]}


def post(port: int, path: str, body: bytes) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def receiver(tmp_path):
    servers = []

    def start():
        server = make_server("127.0.0.1", 0, tmp_path / "receiver")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_receiver_keeps_firing_alerts_until_resolved_and_across_a_restart(receiver, tmp_path):
    port = receiver()
    assert post(port, "/webhook/critical", json.dumps(notification("firing", "a1")).encode()) == 200
    assert post(port, "/webhook/warning", json.dumps(notification("firing", "b2", "TargetDown")).encode()) == 200
    assert [(a.alert, a.severity, a.instance, a.summary) for a in firing(port)] == [
        ("FeedSilent", "critical", "127.0.0.1:9464", "silent"), ("TargetDown", "critical", "127.0.0.1:9464", "silent")]
    assert post(port, "/webhook/critical", json.dumps(notification("resolved", "a1")).encode()) == 200
    assert [a.alert for a in firing(port)] == ["TargetDown"]
    assert [a.alert for a in firing(receiver())] == ["TargetDown"]  # a new receiver on the same data
    log = [json.loads(line) for line in (tmp_path / "receiver" / "notifications.jsonl").read_text().splitlines()]
    assert [(n["route"], n["status"]) for n in log] == [("critical", "firing"), ("warning", "firing"),
                                                        ("critical", "resolved")]


def test_the_receiver_refuses_what_is_no_notification_and_counts_it(receiver):
    port = receiver()
    assert post(port, "/webhook/critical", b"not json") == 400
    assert post(port, "/webhook/critical", b'{"alerts": 3}') == 400
    assert post(port, "/webhook/critical", b'{"alerts": [{"labels": {}}]}') == 400
    assert post(port, "/elsewhere", b"{}") == 404
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert "ticklake_alert_notifications_refused_total 3.0" in metrics
    assert firing(port) == []


def test_asking_a_receiver_that_is_not_there_says_so():
    with pytest.raises(OSError, match="alert receiver on 127.0.0.1:1 does not answer"):
        firing(1)


def test_the_receiver_service_runs_this_python_on_its_port(local_settings):
    service = AlertReceiverService(local_settings)
    command = service.command()
    assert command[1:3] == ["-m", "ticklake.monitoring.receiver"] and str(local_settings.monitoring.receiver_port) in command
    assert service.ports() == {"receiver_port": local_settings.monitoring.receiver_port}


def test_the_real_time_job_is_a_target_from_its_start_to_its_stop(local_settings, monkeypatch):
    from types import SimpleNamespace

    from jobs import flink_live
    from ticklake.cli import cmd_flink

    monkeypatch.setattr(flink_live, "start", lambda settings: SimpleNamespace(pid=1, log="log"))
    monkeypatch.setattr(flink_live, "stop", lambda settings: "stopped")
    target = targets_dir(local_settings, "flink") / f"{local_settings.flink.metrics_port}.json"
    cmd_flink(local_settings, SimpleNamespace(action="start"))
    assert json.loads(target.read_text())[0]["targets"] == [f"127.0.0.1:{local_settings.flink.metrics_port}"]
    cmd_flink(local_settings, SimpleNamespace(action="stop"))
    assert not target.exists()


def test_the_streaming_job_runs_its_bars_apart_and_both_applications_are_targets(local_settings, monkeypatch):
    from types import SimpleNamespace

    from ticklake import submit
    from ticklake.cli import cmd_stream

    spark = local_settings.spark.model_copy(update={"metrics_port": 19465, "stores_metrics_port": 19470})
    local_settings = local_settings.model_copy(update={"spark": spark})
    seen = []

    def run(runs, spark_args):
        seen.append([(args, niceness, s.spark.metrics_port) for s, _, args, niceness in runs])
        announced = {p.name for p in targets_dir(local_settings, "stream").glob("*.json")}
        assert announced == {f"{port}.json" for *_, port in seen[-1]}

    monkeypatch.setattr(submit, "spark_submit_together", run)
    cmd_stream(local_settings, SimpleNamespace(available_now=False, one_app=False, master=None))
    assert seen[0] == [(("--queries", "bars"), 0, spark.metrics_port),
                       (("--queries", "trades,lake"), spark.stores_niceness, spark.stores_metrics_port)]
    cmd_stream(local_settings, SimpleNamespace(available_now=True, one_app=False, master=None))
    assert seen[1] == [(("--available-now",), 0, spark.metrics_port)], "a bounded run is one application"
    assert not list(targets_dir(local_settings, "stream").glob("*.json")), "withdrawn at the end"


def test_jobs_run_together_end_together_and_a_failure_stops_the_others(tmp_path, monkeypatch):
    import time

    from ticklake import submit
    from ticklake.errors import UserError
    from ticklake.processes import pid_alive

    def command(settings, script, *args, spark_args=()):
        return ["sh", "-c", script], dict(os.environ)

    monkeypatch.setattr(submit, "spark_submit_command", command)
    submit.spark_submit_together([(None, "exit 0", (), 0), (None, "sleep 1", (), 5)])
    started = time.monotonic()
    marker = tmp_path / "pid"
    with pytest.raises(UserError, match="failed"):
        submit.spark_submit_together([(None, f"echo $$ > {marker}; sleep 60", (), 0), (None, "sleep 1; exit 3", (), 0)])
    assert time.monotonic() - started < 30
    assert not pid_alive(int(marker.read_text())), "the other job is stopped"


def test_a_sigterm_to_the_launcher_stops_the_jobs_it_runs_together(tmp_path):
    import signal
    import sys
    import time

    from ticklake.processes import pid_alive

    marker = tmp_path / "pids"
    launcher = subprocess.Popen([sys.executable, "-c", f"""
import os
from ticklake import submit
submit.spark_submit_command = lambda settings, script, *args, spark_args=(): (["sh", "-c", script], dict(os.environ))
submit.spark_submit_together([(None, "echo $$ >> {marker}; sleep 60", (), 0)] * 2)
"""], start_new_session=True)
    deadline = time.monotonic() + 30
    while (not marker.exists() or len(marker.read_text().split()) < 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(launcher.pid, signal.SIGTERM)
    assert launcher.wait(30) != 0
    pids = [int(pid) for pid in marker.read_text().split()]
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(pid) for pid in pids), "the jobs outlive their launcher"
