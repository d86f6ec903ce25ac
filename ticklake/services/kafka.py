"""Kafka in KRaft mode on loopback: one combined broker and controller, or ``kafka.brokers`` of
them in one cluster. With the secure profile the client listener is SASL_SSL (SCRAM-SHA-512)
with ACLs; the controller listener stays PLAINTEXT on loopback (SCRAM between controllers is
not supported)."""
from __future__ import annotations

import base64
import os
import subprocess
import uuid
from pathlib import Path

from ticklake.config import KAFKA_USERS, Settings
from ticklake.services.jvm import INFRA, JvmService
from ticklake.java import java_binary
from ticklake.errors import ServiceError


BROKER_PASSWORD = "TICKLAKE_KAFKA_BROKER_PASSWORD"  # the broker's own SCRAM password, in its environment


class KafkaService(JvmService):
    name = "kafka"
    main_class = "kafka.Kafka"
    config_name = "server.properties"
    settings_section = infra_name = "kafka"
    ready_timeout = 120.0

    def __init__(self, settings: Settings, node: int = 0) -> None:
        """``node``: the broker's place in the cluster, from 0; the first one keeps the plain name."""
        self.node = node
        if node:
            self.name = f"kafka-{node + 1}"
        super().__init__(settings)
        self.jars = settings.jars_dir / "kafka"

    @property
    def marker(self) -> str:
        return str(self.config_file)  # the brokers share a main class

    def _offset(self) -> int:
        return self.node * self.settings.kafka.port_step

    def ports(self) -> dict[str, int]:
        k = self.settings.kafka
        return {"port": k.port + self._offset(), "controller_port": k.controller_port + self._offset()} \
            | self.metrics_ports()

    def metrics_port(self) -> int:
        port = self.settings.kafka.metrics_port
        return port + self._offset() if port else 0

    def port_hint(self, role: str) -> str:
        return " (and TICKLAKE_KAFKA__BOOTSTRAP_SERVERS to match)" if role == "port" else ""

    def config_values(self) -> dict[str, object]:
        k = self.settings.kafka
        internal = min(k.brokers, 3)
        voters = ",".join(f"{n + 1}@127.0.0.1:{k.controller_port + n * k.port_step}" for n in range(k.brokers))
        return {"node_id": self.node + 1, "voters": voters,
                "listener": "SASL_SSL" if self.settings.security.enabled else "PLAINTEXT",
                "port": self.ports()["port"], "controller_port": self.ports()["controller_port"],
                "log_dirs": self.data_dir, "partitions": k.partitions, "retention_ms": k.retention_ms,
                "internal_replication": internal, "internal_min_isr": min(internal, 2),
                "security": self.security_config()}

    def security_config(self) -> str:
        """The secure profile's lines: TLS with PEM files, SCRAM, the authorizer. The brokers'
        own password is a reference to an environment variable of the broker process, which
        Kafka resolves as it starts, so it is in no file under the state folder."""
        if not self.settings.security.enabled:
            return ""
        from ticklake.security import JAAS_MODULE, SCRAM
        from ticklake.services.certs import server_key_and_chain

        sec = self.settings.security
        admin = sec.kafka_admin
        return "\n".join([
            "sasl.enabled.mechanisms=" + SCRAM,
            "sasl.mechanism.inter.broker.protocol=" + SCRAM,
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={JAAS_MODULE} required "
            f'username="{admin.username}" password="${{env:{BROKER_PASSWORD}}}";',
            "config.providers=env",
            "config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={server_key_and_chain(self.settings)}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={sec.ca_file}",
            "ssl.client.auth=none",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # The brokers' user, and the controller listener's unauthenticated principal (loopback only).
            f"super.users=User:{admin.username};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found=false",
            "",
        ])

    def environment(self) -> dict[str, str] | None:
        if not self.settings.security.enabled:
            return None
        return {**os.environ, BROKER_PASSWORD: self.settings.security.credential("kafka_admin")}

    def heap(self) -> str:
        return self.settings.kafka.heap

    def cluster_id_file(self) -> Path:
        return self.settings.services_dir / "kafka" / "cluster.id"

    def cluster_id(self) -> str:
        """One id for every broker of the cluster, made by the first to be formatted."""
        path = self.cluster_id_file()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
        return path.read_text().strip()

    def prepare(self) -> None:
        """Render the configuration and, on the first start only, format the KRaft storage
        (``data/meta.properties`` then records it; formatting again would fail). With the secure
        profile formatting also stores the users' SCRAM credentials."""
        super().prepare()
        if (self.data_dir / "meta.properties").exists():
            return
        arguments = [*self.service_jvm_args(), "-cp", self.classpath(), "kafka.tools.StorageTool", "format",
                     f"--cluster-id={self.cluster_id()}", f"--config={self.config_file}"]  # "=": an id may begin with "-"
        if self.settings.security.enabled:
            from ticklake.security import SCRAM

            sec = self.settings.security
            for name in KAFKA_USERS:
                user = getattr(sec, name)
                arguments += ["--add-scram", f"{SCRAM}=[name={user.username},password={sec.credential(name)}]"]
        # The arguments go in a file only this user can read (java @file), not on the command line,
        # where every process list would show the passwords.
        argfile = self.home / "format.args"
        argfile.touch(mode=0o600)
        argfile.write_text("\n".join(_java_quoted(argument) for argument in arguments) + "\n")
        try:
            result = subprocess.run([java_binary(), f"@{argfile}"], capture_output=True, text=True)
        finally:
            argfile.unlink()
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

        from ticklake.security import kafka_python

        options = kafka_python(self.settings, "admin") | {"bootstrap_servers": f"127.0.0.1:{self.ports()['port']}"}
        try:
            admin = KafkaAdminClient(**options, request_timeout_ms=3000, reconnect_backoff_max_ms=1000,
                                     client_id="ticklake-probe")
        except (KafkaError, OSError, ValueError):
            return False
        try:
            admin.list_topics()
            return True
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()


def _java_quoted(argument: str) -> str:
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kafka_services(settings: Settings) -> list[KafkaService]:
    return [KafkaService(settings, node) for node in range(settings.kafka.brokers)]
