"""Prometheus and Alertmanager (Debian's packages, installed by infra/bootstrap.sh) and the
alert receiver, as local services on loopback with their state under ``services_dir``."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import urllib.request
from pathlib import Path

from ticklake.monitoring.config import CONSOLES_DIR, alertmanager_config, prometheus_config, rendered_rules
from ticklake.services.local import LocalService
from ticklake.errors import ServiceError


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


class MonitoringService(LocalService):
    """A service of ``[monitoring]`` listening on 127.0.0.1 at the port of setting ``client_role``."""

    settings_section = "monitoring"
    health_path: str
    ready_timeout = 60.0

    @property
    def port(self) -> int:
        return getattr(self.settings.monitoring, self.client_role)

    def ports(self) -> dict[str, int]:
        return {self.client_role: self.port}

    def answers(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.port}{self.health_path}")


class DebianProgram(MonitoringService):
    """A program from a Debian package; its config file's path marks its process as ours."""

    program: str
    package: str
    health_path = "/-/ready"

    def executable(self) -> str:
        found = shutil.which(self.program)
        if not found:
            raise ServiceError(f"{self.program} was not found: apt-get install {self.package} (make bootstrap "
                               f"does), or skip monitoring with 'ticklake up --no-monitoring'")
        return found

    def check_runtime(self) -> None:
        self.executable()

    @property
    def marker(self) -> str:
        return f"--config.file={self.config_file}"

    def options(self) -> list[str]:
        raise NotImplementedError

    def configuration(self) -> dict[Path, str]:
        """The files ``prepare`` writes: path -> text."""
        raise NotImplementedError

    def prepare(self) -> None:
        for path, text in self.configuration().items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def reconfigure(self) -> bool:
        """Rewrite a changed configuration and have the program reload it (SIGHUP)."""
        if all(path.exists() and path.read_text() == text for path, text in self.configuration().items()):
            return False
        self.prepare()
        os.kill(self.running_pid(), signal.SIGHUP)
        return True

    def command(self) -> list[str]:
        return [self.executable(), self.marker, f"--web.listen-address=127.0.0.1:{self.port}", *self.options()]


class PrometheusService(DebianProgram):
    name = "prometheus"
    program = "prometheus"
    package = "prometheus"
    config_name = "prometheus.yml"
    client_role = "prometheus_port"

    @property
    def rules_dir(self) -> Path:
        return self.home / "rules"

    def configuration(self) -> dict[Path, str]:
        config = json.dumps(prometheus_config(self.settings, self.rules_dir), indent=1)
        return {self.config_file: config, **rendered_rules(self.settings, self.rules_dir)}

    def prepare(self) -> None:
        for old in self.rules_dir.glob("*.yml"):  # a rule file that is no longer shipped goes
            old.unlink()
        super().prepare()

    def options(self) -> list[str]:
        return [
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.settings.monitoring.retention}",
            f"--web.console.templates={CONSOLES_DIR}",
            f"--web.console.libraries={CONSOLES_DIR}",
            "--web.enable-lifecycle",
        ]


class AlertmanagerService(DebianProgram):
    name = "alertmanager"
    program = "prometheus-alertmanager"
    package = "prometheus-alertmanager"
    config_name = "alertmanager.yml"
    client_role = "alertmanager_port"

    def configuration(self) -> dict[Path, str]:
        return {self.config_file: json.dumps(alertmanager_config(self.settings), indent=1)}

    def options(self) -> list[str]:
        return [
            f"--storage.path={self.data_dir}",
            "--cluster.listen-address=",  # one instance: no gossip port (its default 9094 is our web port)
            f"--web.external-url=http://127.0.0.1:{self.port}",
        ]


class AlertReceiverService(MonitoringService):
    name = "alert-receiver"
    config_name = ""
    client_role = "receiver_port"
    health_path = "/health"
    marker = "ticklake.monitoring.receiver"

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.marker, "--port", str(self.port), "--data-dir", str(self.data_dir)]
