"""Local Kafka and Cassandra as background JVM processes: ``up``, ``status``, ``down``.

State (data, logs, pid files, rendered configuration) lives under
``settings.services_dir/<service>``; jars come from the jar cache (``infra/fetch-jars.sh``).
"""
from __future__ import annotations

from ticklake.config import Settings
from ticklake.services.cassandra import CassandraService
from ticklake.services.jvm import JvmService, Progress, ServiceStatus
from ticklake.services.kafka import KafkaService
from ticklake.services.process import ServiceError

__all__ = ["ServiceError", "ServiceStatus", "down", "status", "up"]


def _services(settings: Settings) -> list[JvmService]:
    return [KafkaService(settings), CassandraService(settings)]


def _quiet(message: str) -> None:
    pass


def up(settings: Settings, progress: Progress = _quiet) -> list[ServiceStatus]:
    """Start whatever is not running (all JVMs first, then wait for each) and return the statuses."""
    services = _services(settings)
    launched = []
    for service in services:
        started = service.start()
        progress(f"{service.name}: {'starting' if started else 'already running'}")
        launched.append(started)
    statuses = []
    for service, started in zip(services, launched):
        seconds = service.wait_ready(started, progress)
        if seconds is not None:
            progress(f"{service.name}: ready after {seconds:.1f} s")
        st = service.status()
        st.started_seconds = seconds
        statuses.append(st)
    return statuses


def status(settings: Settings) -> list[ServiceStatus]:
    return [service.status() for service in _services(settings)]


def down(settings: Settings, wipe: bool = False, progress: Progress = _quiet) -> None:
    for service in reversed(_services(settings)):
        service.stop(progress)
        if wipe:
            service.wipe()
            progress(f"{service.name}: data deleted")
