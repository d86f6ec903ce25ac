"""The monitoring stack on the real local services: Prometheus, Alertmanager and the alert
receiver (of their own, under a tmp state folder, on conf/test.toml's ports, with 1-second
scrapes), scraping Kafka's and Cassandra's JMX exporters and a running feed, producer,
streaming job and scheduler; the FeedSilent alert end to end; every dashboard panel's query."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from ticklake import services as svc
from ticklake.config import PROJECT_ROOT, Settings
from ticklake.services.process import free_port
from ticklake.monitoring.receiver import firing
from ticklake.services.local import stop_all
from ticklake.services.process import port_in_use
from ticklake.security import kafka_python

pytestmark = pytest.mark.integration

SILENCE_SECONDS = 10  # FeedSilent's threshold in infra/prometheus/rules/pipeline.yml
FEED_SILENT_FOR = 3  # its 'for', shortened for the test
DASHBOARDS = sorted((PROJECT_ROOT / "infra" / "grafana" / "dashboards").glob("*.json"))


def monitoring_settings(base: Settings, root: Path) -> Settings:
    quick = base.monitoring.model_copy(update={
        "enabled": True, "scrape_interval_seconds": 1, "evaluation_interval_seconds": 1,
        "group_wait_seconds": 1, "group_interval_seconds": 2, "alert_for": {"FeedSilent": f"{FEED_SILENT_FOR}s"}})
    return base.model_copy(update={"state_dir": root, "monitoring": quick})


def api(settings: Settings, path: str, **params) -> dict | list:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.monitoring.prometheus_port}/api/v1/{path}{query}",
                                    timeout=10) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:  # a query that does not parse, say
        raise AssertionError(f"{path} {params}: {error.read().decode()}") from None
    assert body["status"] == "success", body
    return body["data"]


def targets(settings: Settings) -> dict[str, list[str]]:
    """job -> health of each of its active targets."""
    found: dict[str, list[str]] = {}
    for target in api(settings, "targets", state="active")["activeTargets"]:
        found.setdefault(target["labels"]["job"], []).append(target["health"])
    return found


def wait_for(what: str, check, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {result!r})")
        time.sleep(every)


def assert_exporters_loaded(settings: Settings) -> None:
    """Kafka and Cassandra started before the JMX exporter came in have none: say what to do."""
    from ticklake.services.cassandra import CassandraService
    from ticklake.services.kafka import KafkaService

    for service in (KafkaService(settings), CassandraService(settings)):
        cmdline = Path(f"/proc/{service.running_pid()}/cmdline").read_bytes()
        assert b"jmx_prometheus_javaagent" in cmdline, (
            f"the running {service.name} has no JMX exporter agent: restart it ('ticklake down', 'ticklake up')")


@pytest.fixture
def monitoring(services, tmp_path):
    assert_exporters_loaded(services)
    settings = monitoring_settings(services, tmp_path / "state")
    stack = svc.monitoring_services(settings)
    yield settings, stack
    stop_all(stack, lambda _: None)


def test_monitoring_starts_once_scrapes_kafka_and_cassandra_and_stops(monitoring):
    settings, stack = monitoring
    started = svc.start(stack)
    assert all(st.running and st.started_seconds is not None for st in started)
    again = svc.start(stack)  # a second up changes nothing
    assert [(st.pid, st.started_seconds) for st in again] == [(st.pid, None) for st in started]
    wanted = {"prometheus", "alertmanager", "alert-receiver", "kafka", "cassandra"}
    wait_for("every static target up", lambda: targets(settings).keys() >= wanted and all(
        targets(settings)[job] == ["up"] for job in wanted), timeout=20)
    series = {s["__name__"] for s in api(settings, "series", **{"match[]": '{job=~"kafka|cassandra"}'})}
    assert {"kafka_server_bytes_in_total", "kafka_server_under_replicated_partitions",
            "kafka_network_request_total_time_ms", "cassandra_client_request_latency_microseconds",
            "cassandra_compaction_pending_tasks", "cassandra_dropped_messages_total",
            "jvm_memory_used_bytes", "jvm_gc_collection_seconds_sum"} <= series
    changed = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(
        update={"alert_for": {"TargetDown": "7s"}})})
    notes = []
    reloaded = svc.start(svc.monitoring_services(changed), notes.append)  # changed settings: reloaded, not restarted
    assert [(st.pid, st.started_seconds) for st in reloaded] == [(st.pid, None) for st in started]
    assert notes[0].startswith("prometheus: running") and "reloaded" in notes[0]
    assert notes[1].startswith("alertmanager: already running")

    def target_down_for() -> float:
        return next(r["duration"] for g in api(settings, "rules")["groups"] for r in g["rules"] if r["name"] == "TargetDown")

    wait_for("the new 'for' in force", lambda: target_down_for() == 7, timeout=10)
    with urllib.request.urlopen(f"http://127.0.0.1:{settings.monitoring.prometheus_port}/consoles/pipeline.html",
                                timeout=10) as response:
        console = response.read().decode()
    assert "<h1>ticklake pipeline</h1>" in console and "127.0.0.1:" in console and "error" not in console.lower()
    stop_all(stack, lambda _: None)
    assert not any(st.running for st in svc.status(settings) if st.name in wanted)
    assert not any(port_in_use(port) for st in started for port in st.ports.values())
    stop_all(stack, lambda _: None)  # a second down changes nothing


class Pipeline:
    """Feed, producer, streaming job and scheduler as processes of their own (sessions, so
    the feed can be stopped and each ended as a whole), with metrics on free ports."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.feed_port = free_port()
        self.env = {**os.environ, **settings.as_environment(),
                    "TICKLAKE_PRODUCER__METRICS_PORT": str(free_port()),
                    "TICKLAKE_SPARK__METRICS_PORT": str(free_port()),
                    "TICKLAKE_SPARK__STORES_METRICS_PORT": str(free_port()),
                    "TICKLAKE_SCHEDULE__METRICS_PORT": str(free_port()),
                    "TICKLAKE_SCHEDULE__LOG_DIR": str(logs / "schedule"),
                    "TICKLAKE_SCHEDULE__JOBS": json.dumps([{"name": "tick", "cron": "* * * * *", "command": "true"}])}

    def start(self, name: str, *args: str) -> None:
        with open(self.logs / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "ticklake.cli", *args], cwd=PROJECT_ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def signal(self, name: str, sig: int) -> None:
        """Signal the process's group, only while the process is unreaped: a pid that has ended
        is soon another process's (pid_max is 32768 here), and a group of someone else's."""
        process = self.processes[name]
        assert process.poll() is None, f"{name} has exited with {process.returncode}; log {self.logs / name}.log"
        os.killpg(process.pid, sig)

    def stop(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGCONT)  # a stopped feed would never see the SIGTERM
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def poison_record(settings: Settings) -> None:
    """One record the streaming job must quarantine, so every series the dashboards show exists."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_python(settings, "producer"))
    producer.send(settings.kafka.trades_topic, key=b"AAPL", value=b'{"symbol": "AAPL", "price": "oops"}')
    producer.flush()
    producer.close()


@pytest.fixture(scope="module")
def running(services, tmp_path_factory):
    from ticklake.sandbox import drop_named, isolated
    from ticklake.provision import provision

    assert_exporters_loaded(services)
    root = tmp_path_factory.mktemp("monitoring")
    pipeline_settings = isolated(services, uuid.uuid4().hex[:8], root / "checkpoints")
    provision(pipeline_settings)
    settings = monitoring_settings(pipeline_settings, root / "state")
    stack = svc.monitoring_services(settings)
    pipeline = Pipeline(settings, root)
    try:
        svc.start(stack)
        poison_record(settings)
        pipeline.start("scheduler", "schedule", "run")
        pipeline.start("feed", "feed", "--port", str(pipeline.feed_port), "--rate", "100", "--malformed-ratio", "0.02")
        pipeline.start("producer", "produce", "--url", f"ws://127.0.0.1:{pipeline.feed_port}")
        pipeline.start("stream", "stream")
        wanted = {"prometheus", "alertmanager", "alert-receiver", "kafka", "cassandra", "producer", "stream",
                  "scheduler"}
        # One target a job, but two for the streaming job: the bars' application and the stores'.
        wait_for("every target up", lambda: targets(settings).keys() >= wanted and all(
            health == ["up"] * (2 if job == "stream" else 1) for job, health in targets(settings).items()),
            timeout=240, every=2)  # Spark's start on a busy machine
        yield settings, pipeline
    finally:
        pipeline.stop()
        stop_all(stack, lambda _: None)
        drop_named(pipeline_settings)


def feed_silent(settings: Settings) -> bool:
    return any(alert.alert == "FeedSilent" for alert in firing(settings.monitoring.receiver_port))


def test_feed_silent_reaches_the_receiver_when_the_feed_stops_and_resolves_when_it_is_back(running):
    settings, pipeline = running
    assert {job: health for job, health in targets(settings).items() if set(health) != {"up"}} == {}
    assert not feed_silent(settings)
    pipeline.signal("feed", signal.SIGSTOP)  # the connection stays open, nothing comes through it
    stopped = time.monotonic()
    wait_for("FeedSilent notified", lambda: feed_silent(settings), timeout=40)
    waited = time.monotonic() - stopped
    # The threshold, the 'for', two scrapes, an evaluation, Alertmanager's group_wait, and slack for a busy machine.
    assert waited < SILENCE_SECONDS + FEED_SILENT_FOR + 2 * 1 + 1 + 1 + 8, waited
    am = settings.monitoring.alertmanager_port
    with urllib.request.urlopen(f"http://127.0.0.1:{am}/api/v2/alerts?filter=alertname%3D%22FeedSilent%22",
                                timeout=10) as response:
        assert [a["labels"]["severity"] for a in json.load(response)] == ["critical"]
    pipeline.signal("feed", signal.SIGCONT)
    wait_for("FeedSilent resolved", lambda: not feed_silent(settings), timeout=30)
    assert api(settings, "query", query="ticklake_producer_connected")["result"][0]["value"][1] == "1"
    log = settings.services_dir / "alert-receiver" / "data" / "notifications.jsonl"
    notified = [(n["route"], n["status"]) for line in log.read_text().splitlines()
                for n in [json.loads(line)] if n["commonLabels"].get("alertname") == "FeedSilent"]
    assert notified == [("critical", "firing"), ("critical", "resolved")]


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.stem)
def test_every_dashboard_panel_query_parses_and_returns_data(running, dashboard):
    settings, _ = running
    doc = json.loads(dashboard.read_text())
    queries = [(panel["title"], target["expr"]) for panel in doc["panels"] for target in panel["targets"]]
    assert queries and all(panel["datasource"]["uid"] == "prometheus" for panel in doc["panels"])
    # The scheduler's job runs at the start of each minute: its series exist after the first run.
    wait_for("a scheduled run", lambda: api(settings, "query", query="ticklake_schedule_runs_total")["result"],
             timeout=75, every=2)
    # The lake query's first batch (quarantine), rates over two scrapes: a minute or two on a busy machine.
    deadline = time.monotonic() + 150
    while (missing := [(title, expr) for title, expr in queries if not api(settings, "query", query=expr)["result"]]) \
            and time.monotonic() < deadline:
        time.sleep(2)
    assert missing == []
