"""Kafka in KRaft mode (one combined broker and controller) on loopback."""
from __future__ import annotations

import base64
import subprocess
import uuid

from ticklake.services.jvm import INFRA, JvmService
from ticklake.services.process import ServiceError, java_binary


class KafkaService(JvmService):
    name = "kafka"
    main_class = "kafka.Kafka"
    config_name = "server.properties"
    ready_timeout = 120.0

    def ports(self) -> dict[str, int]:
        k = self.settings.kafka
        return {"port": k.port, "controller_port": k.controller_port} | self.metrics_ports()

    def metrics_port(self) -> int:
        return self.settings.kafka.metrics_port

    def port_hint(self, role: str) -> str:
        return " (and TICKLAKE_KAFKA__BOOTSTRAP_SERVERS to match)" if role == "port" else ""

    def config_values(self) -> dict[str, object]:
        k = self.settings.kafka
        return {"port": k.port, "controller_port": k.controller_port, "log_dirs": self.data_dir,
                "partitions": k.partitions, "retention_ms": k.retention_ms}

    def heap(self) -> str:
        return self.settings.kafka.heap

    def prepare(self) -> None:
        """Render the configuration and, on the first start only, format the KRaft storage with a
        new cluster id (``data/meta.properties`` then records it; formatting again would fail)."""
        super().prepare()
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [java_binary(), *self.service_jvm_args(), "-cp", self.classpath(), "kafka.tools.StorageTool", "format",
             f"--cluster-id={cluster_id}", f"--config={self.config_file}"],  # "=": an id may begin with "-"
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"formatting Kafka storage in {self.data_dir} failed:\n{result.stdout}{result.stderr}")

    def service_jvm_args(self) -> list[str]:
        return [
            "-XX:MaxGCPauseMillis=20",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j.configuration={(INFRA / 'kafka' / 'log4j.properties').as_uri()}",
        ]

    def program_args(self) -> list[str]:
        return [str(self.config_file)]

    def answers(self) -> bool:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{self.settings.kafka.port}", request_timeout_ms=3000,
                reconnect_backoff_max_ms=1000, client_id="ticklake-probe",
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()
