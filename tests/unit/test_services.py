"""Service management logic that needs no JVM: config rendering, pid files, ports."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from ticklake.services.cassandra import CassandraService
from ticklake.services.jvm import ServiceError
from ticklake.services.kafka import KafkaService
from ticklake.services.process import pid_alive, port_in_use, runs_main_class


@pytest.fixture
def local_settings(settings, tmp_path):
    return settings.model_copy(update={"state_dir": tmp_path / "state", "cache_dir": tmp_path / "cache"})


def test_kafka_config_uses_configured_ports_and_data_dir(local_settings):
    service = KafkaService(local_settings)
    config = service.render_config()
    assert f"listeners=PLAINTEXT://127.0.0.1:{local_settings.kafka.port}," in config
    assert f"1@127.0.0.1:{local_settings.kafka.controller_port}" in config
    assert f"log.dirs={service.data_dir}" in config
    assert "{" not in config


def test_cassandra_config_uses_configured_ports_and_data_dir(local_settings):
    service = CassandraService(local_settings)
    config = service.render_config()
    assert f"native_transport_port: {local_settings.cassandra.port}" in config
    assert f"commitlog_directory: {service.data_dir}/commitlog" in config
    assert "{" not in config.replace("{}", "")


def test_cassandra_gets_java17_module_flags_and_explicit_heap(local_settings):
    args = CassandraService(local_settings).jvm_args()
    assert "--add-opens" in " ".join(args) and f"-Xmx{local_settings.cassandra.heap}" in args


def test_missing_jars_say_how_to_fetch_them(local_settings):
    with pytest.raises(ServiceError, match="fetch-jars"):
        KafkaService(local_settings).classpath()


def test_dead_or_foreign_pid_is_not_ours(local_settings):
    service = KafkaService(local_settings)
    service.home.mkdir(parents=True)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    service.pid_file.write_text(finished.stdout.strip())
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


def test_port_taken_by_another_process_is_a_clear_error(local_settings, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use(port)
        taken = local_settings.model_copy(update={"kafka": local_settings.kafka.model_copy(update={"port": port})})
        jars = taken.jars_dir / "kafka"
        jars.mkdir(parents=True)
        (jars / "kafka.jar").touch()
        with pytest.raises(ServiceError, match=f"port {port}.*TICKLAKE_KAFKA__PORT"):
            KafkaService(taken).start()
