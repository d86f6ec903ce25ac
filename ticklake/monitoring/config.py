"""The configuration files of the local Prometheus and Alertmanager, generated from the settings.

Prometheus reads the alert rules of ``infra/prometheus/rules/`` (copied, with the ``for``
durations of ``monitoring.alert_for`` put in) and scrapes:
- Kafka and Cassandra through their JMX exporter agents, Prometheus and Alertmanager
  themselves, and the alert receiver: static targets;
- the processes that come and go (``targets.ANNOUNCED_JOBS``): files they write themselves;
- ``monitoring.extra_targets``.
Alertmanager sends critical and warning alerts to the receiver's two webhooks.
Both files are written as JSON, which YAML readers take as it is.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from ticklake.config import PROJECT_ROOT, Settings
from ticklake.errors import UserError
from ticklake.monitoring.targets import ANNOUNCED_JOBS, targets_dir

RULES_DIR = PROJECT_ROOT / "infra" / "prometheus" / "rules"
CONSOLES_DIR = PROJECT_ROOT / "infra" / "prometheus" / "consoles"
SEVERITIES = ("critical", "warning")


def duration(seconds: float) -> str:
    """Seconds as a Prometheus duration (which takes no fractions: milliseconds instead)."""
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{round(seconds * 1000)}ms"


def static_targets(settings: Settings) -> dict[str, list[str]]:
    """Scrape job -> the targets that are there whenever ``ticklake up`` has run."""
    m = settings.monitoring
    jobs = {"prometheus": [f"127.0.0.1:{m.prometheus_port}"], "alertmanager": [f"127.0.0.1:{m.alertmanager_port}"],
            "alert-receiver": [f"127.0.0.1:{m.receiver_port}"]}
    for job, port in (("kafka", settings.kafka.metrics_port), ("cassandra", settings.cassandra.metrics_port)):
        if port:
            jobs[job] = [f"127.0.0.1:{port}"]
    return jobs


def prometheus_config(settings: Settings, rules_dir: Path, targets_root: Path | None = None) -> dict:
    """``targets_root``: where Prometheus finds the announced targets (default: where this
    machine's processes write them)."""
    m = settings.monitoring
    targets_root = targets_root or targets_dir(settings)
    jobs: dict[str, dict] = {}
    for job, targets in [*static_targets(settings).items(), *m.extra_targets.items()]:
        jobs.setdefault(job, {"job_name": job}).setdefault("static_configs", []).append({"targets": targets})
    for job in ANNOUNCED_JOBS:
        jobs.setdefault(job, {"job_name": job})["file_sd_configs"] = [
            {"files": [str(targets_root / job / "*.json")], "refresh_interval": duration(m.scrape_interval_seconds)}]
    return {
        "global": {"scrape_interval": duration(m.scrape_interval_seconds),
                   "evaluation_interval": duration(m.evaluation_interval_seconds)},
        "rule_files": [str(rules_dir / "*.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{m.alertmanager_port}"]}]}]},
        "scrape_configs": list(jobs.values()),
    }


def compose_files(settings: Settings) -> dict[str, str]:
    """The committed configuration files of docker-compose.yml's Prometheus and Alertmanager
    (host networking: the same loopback targets as the local stack), path -> text."""
    header = "# Generated from the default settings (ticklake/monitoring/config.py: compose_files); do not edit by hand.\n"
    prometheus = prometheus_config(settings, Path("/etc/prometheus/rules"), Path("/etc/prometheus/targets"))
    return {
        "infra/prometheus/prometheus.yml": header + yaml.safe_dump(prometheus, sort_keys=False),
        "infra/prometheus/alertmanager.yml": header + yaml.safe_dump(alertmanager_config(settings), sort_keys=False),
    }


def alertmanager_config(settings: Settings) -> dict:
    m = settings.monitoring

    def webhook(severity: str) -> dict:
        url = f"http://127.0.0.1:{m.receiver_port}/webhook/{severity}"
        return {"name": severity, "webhook_configs": [{"url": url, "send_resolved": True}]}

    return {
        "route": {
            "receiver": "warning",
            "group_by": ["alertname", "job"],
            "group_wait": duration(m.group_wait_seconds),
            "group_interval": duration(m.group_interval_seconds),
            "repeat_interval": duration(m.repeat_interval_seconds),
            "routes": [{"matchers": [f'severity="{s}"'], "receiver": s} for s in SEVERITIES],
        },
        "receivers": [webhook(s) for s in SEVERITIES],
    }


def rule_groups(source: Path = RULES_DIR) -> dict[str, dict]:
    """File name -> the parsed rule file, of every shipped rule file."""
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(source.glob("*.yml"))}


def alert_names(source: Path = RULES_DIR) -> list[str]:
    return [rule["alert"] for doc in rule_groups(source).values() for group in doc["groups"]
            for rule in group["rules"] if "alert" in rule]


def rendered_rules(settings: Settings, target: Path, source: Path = RULES_DIR) -> dict[Path, str]:
    """The rule files as copied into ``target``, with the ``for`` of ``monitoring.alert_for``: path -> text."""
    overrides = dict(settings.monitoring.alert_for)
    unknown = sorted(set(overrides) - set(alert_names(source)))
    if unknown:
        raise UserError(f"monitoring.alert_for names unknown alerts {', '.join(unknown)}; "
                        f"the alerts are: {', '.join(alert_names(source))}")
    files = {}
    for name, doc in rule_groups(source).items():
        for group in doc["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") in overrides:
                    rule["for"] = overrides[rule["alert"]]
        files[target / name] = json.dumps(doc, indent=1)
    return files


if __name__ == "__main__":  # python -m ticklake.monitoring.config: rewrite the compose files
    for relative, text in compose_files(Settings()).items():
        (PROJECT_ROOT / relative).write_text(text)
