"""Prometheus and Alertmanager (Debian's packages, installed by infra/bootstrap.sh) and the
alert receiver, as local services on loopback with their state under ``services_dir``."""
from __future__ import annotations

import json
import shutil
import sys
import urllib.request

from ticklake.monitoring.config import CONSOLES_DIR, alertmanager_config, prometheus_config, render_rules
from ticklake.services.local import LocalService
from ticklake.services.process import ServiceError


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200
    except OSError:
        return False


class DebianProgram(LocalService):
    """A program from a Debian package; its config file's path marks its process as ours."""

    settings_section = "monitoring"
    program: str
    package: str

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


class PrometheusService(DebianProgram):
    name = "prometheus"
    program = "prometheus"
    package = "prometheus"
    config_name = "prometheus.yml"
    client_role = "prometheus_port"
    ready_timeout = 60.0

    @property
    def rules_dir(self):
        return self.home / "rules"

    def ports(self) -> dict[str, int]:
        return {"prometheus_port": self.settings.monitoring.prometheus_port}

    def prepare(self) -> None:
        render_rules(self.settings, self.rules_dir)
        self.config_file.write_text(json.dumps(prometheus_config(self.settings, self.rules_dir), indent=1))

    def command(self) -> list[str]:
        m = self.settings.monitoring
        return [
            self.executable(), self.marker,
            f"--web.listen-address=127.0.0.1:{m.prometheus_port}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={m.retention}",
            f"--web.console.templates={CONSOLES_DIR}",
            f"--web.console.libraries={CONSOLES_DIR}",
            "--web.enable-lifecycle",
        ]

    def answers(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.settings.monitoring.prometheus_port}/-/ready")


class AlertmanagerService(DebianProgram):
    name = "alertmanager"
    program = "prometheus-alertmanager"
    package = "prometheus-alertmanager"
    config_name = "alertmanager.yml"
    client_role = "alertmanager_port"
    ready_timeout = 60.0

    def ports(self) -> dict[str, int]:
        return {"alertmanager_port": self.settings.monitoring.alertmanager_port}

    def prepare(self) -> None:
        self.config_file.write_text(json.dumps(alertmanager_config(self.settings), indent=1))

    def command(self) -> list[str]:
        m = self.settings.monitoring
        return [
            self.executable(), self.marker,
            f"--web.listen-address=127.0.0.1:{m.alertmanager_port}",
            f"--storage.path={self.data_dir}",
            "--cluster.listen-address=",  # one instance: no gossip port (its default 9094 is our web port)
            f"--web.external-url=http://127.0.0.1:{m.alertmanager_port}",
        ]

    def answers(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.settings.monitoring.alertmanager_port}/-/ready")


class AlertReceiverService(LocalService):
    name = "alert-receiver"
    config_name = ""
    settings_section = "monitoring"
    client_role = "receiver_port"
    marker = "ticklake.monitoring.receiver"
    ready_timeout = 30.0

    def ports(self) -> dict[str, int]:
        return {"receiver_port": self.settings.monitoring.receiver_port}

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.marker, "--port", str(self.settings.monitoring.receiver_port),
                "--data-dir", str(self.data_dir)]

    def answers(self) -> bool:
        return http_ok(f"http://127.0.0.1:{self.settings.monitoring.receiver_port}/health")
