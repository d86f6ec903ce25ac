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
    ready_timeout = 120.0

    def ports(self) -> dict[str, int]:
        k = self.settings.kafka
        return {"port": k.port, "controller_port": k.controller_port}

    @property
    def config_file(self):
        return self.home / "server.properties"

    def render_config(self) -> str:
        k = self.settings.kafka
        template = (INFRA / "kafka" / "server.properties").read_text()
        return template.format(
            port=k.port, controller_port=k.controller_port, log_dirs=self.data_dir,
            partitions=k.partitions, retention_ms=k.retention_ms,
        )

    def prepare(self) -> None:
        self.config_file.write_text(self.render_config())
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [java_binary(), "-cp", self.classpath(), "kafka.tools.StorageTool", "format",
             f"--cluster-id={cluster_id}", f"--config={self.config_file}"],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"formatting Kafka storage in {self.data_dir} failed:\n{result.stdout}{result.stderr}")

    def jvm_args(self) -> list[str]:
        return [
            f"-Xms{self.settings.kafka.heap}", f"-Xmx{self.settings.kafka.heap}",
            "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
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
                bootstrap_servers=self.settings.kafka.bootstrap_servers, request_timeout_ms=3000,
                client_id="ticklake-probe",
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
