"""Metrics endpoints of processes that come and go (producer, streaming job, scheduler, Flink).

Each announces itself to the local Prometheus with a file in
``<services_dir>/prometheus/targets/<job>/`` (Prometheus' file-based discovery), removed when
the process exits. So a process that is not running is no target, and one that died without
cleaning up (killed, crashed) is a target that is down: the ``TargetDown`` alert.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from ticklake.config import Settings

log = logging.getLogger("ticklake.monitoring")
ANNOUNCED_JOBS = ("producer", "stream", "scheduler", "flink")


def targets_dir(settings: Settings, job: str | None = None) -> Path:
    root = settings.services_dir / "prometheus" / "targets"
    return root / job if job else root


def scrape_address(host: str, port: int) -> str:
    """Where a local Prometheus reaches an endpoint bound to ``host``."""
    return f"{'127.0.0.1' if host in ('', '0.0.0.0', '::') else host}:{port}"


def announce(settings: Settings, job: str, host: str, port: int, until_exit: bool = True) -> Path | None:
    """Name ``host:port`` as a target of ``job`` until this process exits (``until_exit``) or
    the caller withdraws it (a launcher of a detached process: at its stop); None if the state
    folder cannot be written (the endpoint serves all the same)."""
    path = targets_dir(settings, job) / f"{port}.json"
    entry = [{"targets": [scrape_address(host, port)], "labels": {"announced_by": str(os.getpid())}}]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(entry))
        temporary.replace(path)  # Prometheus never reads half a file
    except OSError as error:
        log.warning("could not announce the %s metrics endpoint to Prometheus: %s", job, error)
        return None
    if until_exit:
        atexit.register(withdraw, path)
    return path


def withdraw(path: Path) -> None:
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def announced(settings: Settings, job: str, host: str, port: int):
    """``job``'s endpoint announced while the block runs: for a launcher whose child (a Spark
    driver in client mode, on this machine) serves the metrics."""
    path = announce(settings, job, host, port) if port else None
    try:
        yield
    finally:
        if path:
            withdraw(path)


def serve_metrics(settings: Settings, job: str, registry: CollectorRegistry, host: str, port: int) -> None:
    """Serve ``registry`` on ``host:port`` (nothing if ``port`` is 0) and announce it."""
    if not port:
        return
    start_http_server(port, addr=host, registry=registry)
    announce(settings, job, host, port)
    log.info("%s metrics on http://%s/metrics", job, scrape_address(host, port))
