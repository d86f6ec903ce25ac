"""Cassandra 5.0 as one local node on loopback, run from the cassandra-all jar on Java 17."""
from __future__ import annotations

from ticklake.logs import silenced
from ticklake.services.jvm import INFRA, JvmService


class CassandraService(JvmService):
    name = "cassandra"
    main_class = "org.apache.cassandra.service.CassandraDaemon"
    config_name = "cassandra.yaml"

    def ports(self) -> dict[str, int]:
        c = self.settings.cassandra
        return {"port": c.port, "storage_port": c.storage_port} | self.metrics_ports()

    def metrics_port(self) -> int:
        return self.settings.cassandra.metrics_port

    def config_values(self) -> dict[str, object]:
        c = self.settings.cassandra
        secure = self.settings.security.enabled
        return {"port": c.port, "storage_port": c.storage_port, "data_dir": self.data_dir,
                "authenticator": "PasswordAuthenticator" if secure else "AllowAllAuthenticator",
                "authorizer": "CassandraAuthorizer" if secure else "AllowAllAuthorizer",
                "client_encryption": self.client_encryption()}

    def client_encryption(self) -> str:
        """The secure profile's TLS on the native port: Cassandra's PEM factory reads the server's
        unencrypted PKCS#8 key and chain from one file; clients need no certificate."""
        if not self.settings.security.enabled:
            return ""
        from ticklake.services.certs import server_key_and_chain

        return ("client_encryption_options:\n  enabled: true\n  optional: false\n"
                "  ssl_context_factory:\n    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory\n"
                f"  keystore: {server_key_and_chain(self.settings)}\n  require_client_auth: false\n")

    def heap(self) -> str:
        return self.settings.cassandra.heap

    def prepare(self) -> None:
        super().prepare()
        (self.home / "triggers").mkdir(exist_ok=True)

    def module_flags(self) -> list[str]:
        """The Java 17 flags of Cassandra's own conf/jvm17-server.options, kept in infra/cassandra/."""
        lines = (INFRA / "cassandra" / "jvm17-server.options").read_text().splitlines()
        return [part for line in lines if line and not line.startswith("#") for part in line.split()]

    def service_jvm_args(self) -> list[str]:
        jamm = sorted(self.jars.glob("jamm-*.jar"))
        return [
            "-XX:MaxGCPauseMillis=300", "-Xss512k", "-XX:+PerfDisableSharedMem",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={self.config_file.as_uri()}",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.logdir={self.log_dir}",
            f"-Dcassandra.triggers_dir={self.home / 'triggers'}",
            f"-Dlogback.configurationFile={(INFRA / 'cassandra' / 'logback.xml').as_uri()}",
            # One node, no peers: skip the waits meant for gossip in a real cluster.
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-Dcassandra.shutdown_announce_in_ms=0",
            # The default superuser appears this long after start (authentication on only).
            f"-Dcassandra.superuser_setup_delay_ms={self.settings.security.superuser_setup_delay_ms}",
            *(f"-javaagent:{path}" for path in jamm[:1]),
            *self.module_flags(),
        ]

    def answers(self) -> bool:
        from ticklake.cql import cassandra_cluster

        # Probe the local node, whatever contact points the settings name.
        c = self.settings.cassandra
        local = self.settings.model_copy(update={"cassandra": c.model_copy(update={"contact_points": ["127.0.0.1"]})})
        cluster = cassandra_cluster(local, connect_timeout=3, control_connection_timeout=3, user=None)
        try:
            with silenced("cassandra"):
                session = cluster.connect()
            session.execute("SELECT release_version FROM system.local", timeout=5)
            return True
        except Exception as error:  # noqa: BLE001 - any other failure means "not yet"
            # With authentication on, a refused login (no roles yet) means it serves clients.
            return type(error).__name__ == "NoHostAvailable" and "AuthenticationFailed" in str(error)
        finally:
            cluster.shutdown()
