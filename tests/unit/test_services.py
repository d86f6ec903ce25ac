"""Service management logic that needs no JVM: config rendering, pid files, ports, stopping."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from ticklake import services as svc
from ticklake.config import PROJECT_ROOT
from ticklake.services.cassandra import CassandraService
from ticklake.services.kafka import KafkaService
from ticklake.services.local import LAUNCH_MARK
from ticklake.processes import pid_alive, runs_main_class
from ticklake.java import java_binary
from ticklake.errors import ServiceError
from ticklake.services.process import free_port, port_in_use, tail


@pytest.fixture
def local_settings(settings, tmp_path):
    local = settings.model_copy(update={"state_dir": tmp_path / "state", "cache_dir": tmp_path / "cache"})
    fake_agent(local)
    return local


def fake_agent(settings):
    agent = settings.jars_dir / "jmx-exporter" / "jmx_prometheus_javaagent-1.0.1.jar"
    agent.parent.mkdir(parents=True)
    agent.touch()
    return agent


def fake_jars(settings, name: str) -> None:
    jars = settings.jars_dir / name
    jars.mkdir(parents=True)
    (jars / f"{name}.jar").touch()


def dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(finished.stdout)


def test_kafka_config_uses_configured_ports_and_data_dir(local_settings):
    service = KafkaService(local_settings)
    config = service.render_config()
    assert f"listeners=PLAINTEXT://127.0.0.1:{local_settings.kafka.port}," in config
    assert f"1@127.0.0.1:{local_settings.kafka.controller_port}" in config
    assert f"log.dirs={service.data_dir}" in config
    assert f"num.partitions={local_settings.kafka.partitions}" in config
    assert "auto.create.topics.enable=false" in config
    assert "{" not in config


def test_cassandra_config_uses_configured_ports_and_data_dir(local_settings):
    service = CassandraService(local_settings)
    config = service.render_config()
    assert f"native_transport_port: {local_settings.cassandra.port}" in config
    assert f"storage_port: {local_settings.cassandra.storage_port}" in config
    assert f"commitlog_directory: {service.data_dir}/commitlog" in config
    assert "{" not in config.replace("{}", "")


def test_jvm_args_carry_heap_logging_and_java17_module_flags(local_settings):
    kafka = KafkaService(local_settings).jvm_args()
    assert f"-Xmx{local_settings.kafka.heap}" in kafka
    assert any(arg.startswith("-Dlog4j.configuration=file:") for arg in kafka)
    cassandra = CassandraService(local_settings).jvm_args()
    assert f"-Xmx{local_settings.cassandra.heap}" in cassandra
    assert "--add-opens" in cassandra and "java.base/java.lang=ALL-UNNAMED" in cassandra
    assert all(arg.strip() == arg and arg for arg in cassandra)  # one token per argument


def test_the_jmx_exporter_agent_rides_in_kafka_and_cassandra_on_loopback_unless_its_port_is_0(local_settings, tmp_path):
    bare = local_settings.model_copy(update={"cache_dir": tmp_path / "bare"})
    fake_jars(bare, "kafka")
    with pytest.raises(ServiceError, match="no JMX exporter agent.*TICKLAKE_KAFKA__METRICS_PORT=0"):
        KafkaService(bare).check_runtime()
    agent = local_settings.jars_dir / "jmx-exporter" / "jmx_prometheus_javaagent-1.0.1.jar"
    for service, port in ((KafkaService(local_settings), local_settings.kafka.metrics_port),
                          (CassandraService(local_settings), local_settings.cassandra.metrics_port)):
        rules = PROJECT_ROOT / "infra" / service.name / "jmx-exporter.yml"
        assert f"-javaagent:{agent}=127.0.0.1:{port}:{rules}" in service.jvm_args() and rules.is_file()
        assert service.ports()["metrics_port"] == port
    off = local_settings.model_copy(update={"kafka": local_settings.kafka.model_copy(update={"metrics_port": 0})})
    assert not any(arg.startswith("-javaagent:") for arg in KafkaService(off).jvm_args())
    assert "metrics_port" not in KafkaService(off).ports()


def test_missing_jars_say_how_to_fetch_them(local_settings):
    with pytest.raises(ServiceError, match="fetch-jars"):
        KafkaService(local_settings).check_can_start()


def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServiceError, match="Java was not found"):
        java_binary()


def test_dead_or_foreign_pid_is_not_ours(local_settings):
    service = KafkaService(local_settings)
    service.home.mkdir(parents=True)
    service.pid_file.write_text(str(dead_pid()))
    assert service.running_pid() is None  # dead process
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        service.pid_file.write_text(str(sleeper.pid))
        assert pid_alive(sleeper.pid)
        assert not runs_main_class(sleeper.pid, service.main_class)
        assert service.running_pid() is None  # alive, but not a Kafka broker
    finally:
        sleeper.kill()
        sleeper.wait()


def test_status_of_nothing_started_and_of_a_stale_pid_file(local_settings):
    kafka = KafkaService(local_settings)
    kafka.home.mkdir(parents=True)
    kafka.pid_file.write_text(str(dead_pid()))
    statuses = {s.name: s for s in svc.status(local_settings)}
    assert set(statuses) == {"kafka", "cassandra"}
    assert not any(s.running or s.pid for s in statuses.values())
    assert statuses["kafka"].ports == {"port": local_settings.kafka.port,
                                       "controller_port": local_settings.kafka.controller_port,
                                       "metrics_port": local_settings.kafka.metrics_port}
    assert statuses["cassandra"].log_file == local_settings.services_dir / "cassandra" / "logs" / "cassandra.out"


def test_up_and_status_include_the_monitoring_unless_it_is_off_and_down_stops_it_either_way(local_settings, monkeypatch):
    on = local_settings.model_copy(update={"monitoring": local_settings.monitoring.model_copy(update={"enabled": True})})
    off = on.model_copy(update={"monitoring": on.monitoring.model_copy(update={"enabled": False})})
    everything = ["kafka", "cassandra", "prometheus", "alertmanager", "alert-receiver"]
    assert [s.name for s in svc.status(on)] == everything
    assert [s.name for s in svc.status(off)] == ["kafka", "cassandra"]  # none of them runs
    assert [s.name for s in svc._services(off)] == ["kafka", "cassandra"]
    stopped = []
    monkeypatch.setattr(svc, "stop_all", lambda services, progress: stopped.extend(s.name for s in services))
    svc.down(off)
    assert stopped == everything


def test_a_missing_monitoring_program_says_what_to_install(local_settings, monkeypatch):
    from ticklake.services.monitoring import PrometheusService

    monkeypatch.setenv("PATH", str(local_settings.state_dir))
    with pytest.raises(ServiceError, match="apt-get install prometheus.*--no-monitoring"):
        PrometheusService(local_settings).check_can_start()


def test_port_taken_by_another_process_is_a_clear_error(local_settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use(port)
        taken = local_settings.model_copy(update={"kafka": local_settings.kafka.model_copy(update={"port": port})})
        fake_jars(taken, "kafka")
        with pytest.raises(ServiceError, match=f"port {port}.*TICKLAKE_KAFKA__PORT.*BOOTSTRAP_SERVERS"):
            KafkaService(taken).check_can_start()
    assert not port_in_use(port)


def test_up_checks_every_service_before_launching_any(local_settings):
    """A Cassandra port conflict must not leave a freshly launched Kafka behind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        taken = local_settings.model_copy(update={
            "kafka": local_settings.kafka.model_copy(update={"port": free_port(), "controller_port": free_port(),
                                                             "metrics_port": free_port()}),
            "cassandra": local_settings.cassandra.model_copy(update={"port": free_port(), "storage_port": port,
                                                                     "metrics_port": free_port()}),
        })
        fake_jars(taken, "kafka")
        fake_jars(taken, "cassandra")
        with pytest.raises(ServiceError, match="TICKLAKE_CASSANDRA__STORAGE_PORT"):
            svc.up(taken)
    assert not KafkaService(taken).pid_file.exists()


def test_failure_report_quotes_only_the_last_run_of_the_log(tmp_path):
    log = tmp_path / "kafka.out"
    log.write_text(f"{LAUNCH_MARK} kafka\nold trouble\n{LAUNCH_MARK} kafka\n" + "".join(f"line {i}\n" for i in range(30)))
    assert tail(log, after=LAUNCH_MARK).splitlines() == [f"line {i}" for i in range(10, 30)]
    assert tail(log, lines=3, after=LAUNCH_MARK).splitlines() == ["line 27", "line 28", "line 29"]
    assert "old trouble" not in tail(log, lines=100, after=LAUNCH_MARK)
    assert tail(tmp_path / "missing.out").startswith("(no log at")
