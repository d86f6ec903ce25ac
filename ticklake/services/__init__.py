"""Local Kafka and Cassandra as background JVM processes, and the monitoring beside them
(Prometheus, Alertmanager, the alert receiver): ``up``, ``status``, ``down``; and on request a
Spark standalone master and worker (``cluster=True``).

State (data, logs, pid files, rendered configuration) lives under
``settings.services_dir/<service>``; jars come from the jar cache (``infra/fetch-jars.sh``).
"""
from __future__ import annotations

from ticklake.config import Settings
from ticklake.services.cassandra import CassandraService
from ticklake.services.kafka import kafka_services
from ticklake.services.local import LocalService, Progress, ServiceStatus, stop_all
from ticklake.services.monitoring import AlertmanagerService, AlertReceiverService, PrometheusService
from ticklake.errors import ServiceError
from ticklake.services.spark import SparkMasterService, SparkWorkerService

__all__ = ["ServiceError", "ServiceStatus", "down", "status", "up"]


def monitoring_services(settings: Settings) -> list[LocalService]:
    return [PrometheusService(settings), AlertmanagerService(settings), AlertReceiverService(settings)]


def _services(settings: Settings, cluster: bool = False) -> list[LocalService]:
    if cluster:
        return [SparkMasterService(settings), SparkWorkerService(settings)]
    monitoring = monitoring_services(settings) if settings.monitoring.enabled else []
    return [*kafka_services(settings), CassandraService(settings), *monitoring]


def _started_before(settings: Settings) -> list[LocalService]:
    """Brokers beyond the configured ones that an earlier 'up --brokers N' left (status and down see them)."""
    known = {service.name for service in kafka_services(settings)}
    return [broker for broker in kafka_services(settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"brokers": 9})})) if broker.name not in known and broker.home.is_dir()]


def _quiet(message: str) -> None:
    pass


def up(settings: Settings, progress: Progress = _quiet, cluster: bool = False) -> list[ServiceStatus]:
    """Start whatever is not running and wait until everything answers. Idempotent. The secure
    profile's certificates and local passwords are created first, where missing, and expired
    certificates stop it before anything starts."""
    if settings.security.enabled and not cluster:
        from ticklake.security import check_certificates
        from ticklake.services.certs import ensure_certificates, ensure_local_passwords

        for path in ensure_certificates(settings):
            progress(f"security: created {path}")
        for name in ensure_local_passwords(settings):
            progress(f"security: created a password for security.{name} in {settings.security.secrets_dir}")
        check_certificates(settings)
    return start(_services(settings, cluster), progress)


def start(services: list[LocalService], progress: Progress = _quiet) -> list[ServiceStatus]:
    """Start those of ``services`` that are not running and wait until all answer; a running
    one whose configuration the settings have changed since reloads it (the monitoring's).

    Every check runs before the first launch, and all processes are launched before waiting
    for any, so a cold start takes as long as the slowest service.
    """
    stopped = [service for service in services if service.running_pid() is None]
    for service in stopped:
        service.check_can_start()
    launched = {service.name: service.launch(progress) for service in stopped}
    for service in services:
        started = launched.get(service.name)
        if started:
            progress(f"{service.name}: starting (pid {started.pid})")
        elif service.reconfigure():
            progress(f"{service.name}: running (pid {service.running_pid()}), reloaded its changed configuration")
        else:
            progress(f"{service.name}: already running (pid {service.running_pid()})")
    statuses = []
    for service in services:
        seconds = service.wait_ready(launched.get(service.name), progress)
        if seconds is not None:
            progress(f"{service.name}: ready after {seconds:.1f} s")
        st = service.status()
        st.started_seconds = seconds
        statuses.append(st)
    return statuses


def status(settings: Settings, cluster: bool = False) -> list[ServiceStatus]:
    """The services ``up`` starts, and the monitoring ones if they run although it is off."""
    services = _services(settings, cluster)
    if not cluster:
        services += [s for s in _started_before(settings) if s.running_pid() is not None]
    if not cluster and not settings.monitoring.enabled:
        services += [s for s in monitoring_services(settings) if s.running_pid() is not None]
    return [service.status() for service in services]


def down(settings: Settings, wipe: bool = False, progress: Progress = _quiet, cluster: bool = False) -> None:
    """Stop the services (data kept), the monitoring ones even if it is off now; ``wipe`` also
    deletes their state folders."""
    services = _services(settings, cluster)
    if not cluster:
        services += _started_before(settings)
    if not cluster and not settings.monitoring.enabled:
        services += monitoring_services(settings)
    stop_all(services, progress)
    if wipe:
        for service in services:
            service.wipe()
            progress(f"{service.name}: deleted {service.home}")
