"""ticklake up / status / down on the real local Kafka and Cassandra.

These tests restart the shared services; each leaves them running, as it found them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ticklake import services as svc
from ticklake.cql import cassandra_session
from ticklake.services.kafka import KafkaService
from ticklake.processes import pid_alive

pytestmark = pytest.mark.integration


def wait_dead(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(pid)


def test_second_up_changes_nothing(services):
    before = {s.name: s.pid for s in svc.status(services)}
    statuses = svc.up(services)
    assert {s.name: s.pid for s in statuses} == before
    assert all(s.running and s.started_seconds is None for s in statuses)


def test_status_reports_ports_and_logs(services):
    by_name = {s.name: s for s in svc.status(services)}
    assert set(by_name) == {"kafka", "cassandra"}
    assert by_name["kafka"].ports == {"port": services.kafka.port, "controller_port": services.kafka.controller_port,
                                      "metrics_port": services.kafka.metrics_port}
    assert by_name["cassandra"].ports == {"port": services.cassandra.port,
                                          "storage_port": services.cassandra.storage_port,
                                          "metrics_port": services.cassandra.metrics_port}
    for st in by_name.values():
        assert st.running and st.log_file.exists() and st.data_dir.is_dir()
        assert f"/{st.name}/" in st.log_file.as_posix() and st.pid > 1


@pytest.mark.parametrize("pid_file_names", ["a dead process", "another program"])
def test_crashed_broker_with_stale_pid_file_is_restarted_by_up(services, pid_file_names):
    kafka = KafkaService(services)
    pid = kafka.running_pid()
    os.killpg(pid, signal.SIGKILL)
    wait_dead(pid)
    assert kafka.pid_file.read_text() == str(pid)  # a crash leaves the pid file behind
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        if pid_file_names == "another program":  # the pid was reused: it must not count as our broker
            kafka.pid_file.write_text(str(impostor.pid))
        statuses = {s.name: s for s in svc.up(services)}
        assert statuses["kafka"].running and statuses["kafka"].pid not in (pid, impostor.pid)
        assert statuses["kafka"].started_seconds is not None
        assert statuses["cassandra"].started_seconds is None  # untouched
        assert pid_alive(impostor.pid)
    finally:
        impostor.kill()
        impostor.wait()
        svc.up(services)


def test_down_then_up_keeps_data(services):
    session = cassandra_session(services)
    session.execute("CREATE KEYSPACE IF NOT EXISTS ticklake_keepme WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}", timeout=60)
    session.cluster.shutdown()
    pids = [s.pid for s in svc.status(services)]
    try:
        svc.down(services)
        assert not any(s.running for s in svc.status(services))
        assert not any(pid_alive(pid) for pid in pids)
        assert all(s.data_dir.is_dir() for s in svc.status(services))
    finally:
        statuses = svc.up(services)
    assert all(s.running and s.started_seconds is not None for s in statuses)
    session = cassandra_session(services)
    try:
        names = {row.keyspace_name for row in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")}
        assert "ticklake_keepme" in names
    finally:
        session.execute("DROP KEYSPACE ticklake_keepme", timeout=60)
        session.cluster.shutdown()
