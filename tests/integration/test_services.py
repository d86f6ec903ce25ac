"""ticklake up / status / down on the real local Kafka and Cassandra."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ticklake import services as svc
from ticklake.provision import cassandra_session
from ticklake.services.kafka import KafkaService
from ticklake.services.process import pid_alive

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
    assert all(s.started_seconds is None for s in statuses)


def test_status_reports_ports_and_logs(services):
    by_name = {s.name: s for s in svc.status(services)}
    assert set(by_name) == {"kafka", "cassandra"}
    assert by_name["kafka"].ports["port"] == services.kafka.port
    assert by_name["cassandra"].ports["port"] == services.cassandra.port
    assert all(s.running and s.log_file.exists() for s in by_name.values())


def test_crashed_broker_with_stale_or_reused_pid_is_restarted_by_up(services):
    kafka = KafkaService(services)
    pid = kafka.running_pid()
    os.killpg(pid, signal.SIGKILL)
    wait_dead(pid)
    assert kafka.pid_file.exists()  # a crash leaves the pid file behind
    # The pid now belongs to some other program: it must not count as our broker.
    impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        kafka.pid_file.write_text(str(impostor.pid))
        statuses = {s.name: s for s in svc.up(services)}
        assert statuses["kafka"].running and statuses["kafka"].pid not in (pid, impostor.pid)
        assert statuses["kafka"].started_seconds is not None
    finally:
        impostor.kill()
        impostor.wait()


def test_down_then_up_keeps_data(services):
    session = cassandra_session(services)
    session.execute("CREATE KEYSPACE IF NOT EXISTS ticklake_keepme WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.cluster.shutdown()
    svc.down(services)
    assert not any(s.running for s in svc.status(services))
    svc.up(services)
    session = cassandra_session(services)
    try:
        names = {row.keyspace_name for row in session.execute("SELECT keyspace_name FROM system_schema.keyspaces")}
        assert "ticklake_keepme" in names
    finally:
        session.execute("DROP KEYSPACE ticklake_keepme")
        session.cluster.shutdown()
