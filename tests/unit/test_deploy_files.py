"""docker-compose.yml and the Kubernetes manifests: well-formed, referring to files that exist,
matching the settings, and (Kubernetes) valid against the API schemas (kubernetes-validate)."""
from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from ticklake.config import PROJECT_ROOT, Settings
from ticklake.monitoring.config import compose_files

K8S = sorted((PROJECT_ROOT / "infra" / "k8s").glob("*.yaml"))
COMPOSE = PROJECT_ROOT / "docker-compose.yml"
K8S_VERSION = "1.30.0"


@pytest.fixture
def defaults(monkeypatch) -> Settings:
    monkeypatch.setenv("TICKLAKE_CONFIG", "conf/ticklake.toml")
    return Settings()


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", K8S, ids=lambda p: p.name)
def test_kubernetes_manifests_are_valid_against_the_api_schemas(path):
    docs = documents(path)
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus Operator's kinds: checked below
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_each_service_monitor_selects_a_service_with_its_metrics_port():
    docs = documents(PROJECT_ROOT / "infra" / "k8s" / "pipeline.yaml")
    services = [d for d in docs if d["kind"] == "Service"]
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == len(services) == 2
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        wanted = monitor["spec"]["selector"]["matchLabels"]
        [service] = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
        assert monitor["spec"]["jobLabel"] in service["metadata"]["labels"]
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}


def test_pods_announce_the_metrics_port_of_the_settings_and_bind_their_address(defaults):
    deployments = {d["metadata"]["name"]: d for d in documents(PROJECT_ROOT / "infra" / "k8s" / "pipeline.yaml")
                   if d["kind"] == "Deployment"}
    ports = {"ticklake-producer": ("PRODUCER", defaults.producer.metrics_port),
             "ticklake-stream": ("SPARK", defaults.spark.metrics_port)}
    assert set(deployments) == set(ports)
    k = defaults.schedule.kubernetes
    for name, (section, port) in ports.items():
        template = deployments[name]["spec"]["template"]
        assert template["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                                                       "prometheus.io/path": "/metrics"}
        [container] = template["spec"]["containers"]
        assert container["ports"] == [{"name": "metrics", "containerPort": port}]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[f"TICKLAKE_{section}__METRICS_HOST"] == "0.0.0.0"
        assert container["image"] == k.image and deployments[name]["metadata"]["namespace"] == k.namespace
        assert template["spec"]["volumes"] == [{"name": "conf", "configMap": {"name": k.config_map}}]


def test_the_compose_file_mounts_files_that_exist_and_the_generated_monitoring_config(defaults):
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"kafka", "cassandra", "prometheus", "alertmanager", "grafana"} <= set(services)
    for name, service in services.items():
        assert service["image"], name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts {source}, which is not there"
            elif not source.startswith("${"):
                assert source in compose["volumes"], f"{name}: volume {source} is not declared"
    for relative, text in compose_files(defaults).items():
        assert (PROJECT_ROOT / relative).read_text() == text, "regenerate: python -m ticklake.monitoring.config"
    for check in (["promtool", "check", "config", "infra/prometheus/prometheus.yml"],
                  ["amtool", "check-config", "infra/prometheus/alertmanager.yml"]):
        result = subprocess.run(check, capture_output=True, text=True, cwd=PROJECT_ROOT)
        assert result.returncode == 0, result.stdout + result.stderr
    alertmanager = services["alertmanager"]["command"]
    assert "--cluster.listen-address=" in alertmanager and "--web.listen-address=127.0.0.1:9094" in alertmanager
    assert all(services[s]["network_mode"] == "host" for s in ("prometheus", "alertmanager", "grafana"))
    assert "host.docker.internal" not in COMPOSE.read_text()


def test_the_compose_exporter_agents_are_the_version_the_bootstrap_fetches():
    pom = ET.parse(PROJECT_ROOT / "infra" / "maven" / "jmx-exporter" / "pom.xml")
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = pom.find(".//m:dependency/m:version", ns).text
    agents = re.findall(r"jmx_prometheus_javaagent-([\d.]+)\.jar", COMPOSE.read_text())
    assert agents and set(agents) == {version}


def test_grafana_provisions_the_dashboards_from_the_mounted_folder():
    provider = yaml.safe_load((PROJECT_ROOT / "infra" / "grafana" / "provisioning" / "dashboards" / "ticklake.yml").read_text())
    grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    path = provider["providers"][0]["options"]["path"]
    assert mounted[path] == "./infra/grafana/dashboards"
    source = yaml.safe_load((PROJECT_ROOT / "infra" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert [d["uid"] for d in source["datasources"]] == ["prometheus"]
