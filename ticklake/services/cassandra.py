"""Cassandra 5.0 as one local node on loopback, run from the cassandra-all jar on Java 17."""
from __future__ import annotations

from ticklake.services.jvm import INFRA, JvmService


class CassandraService(JvmService):
    name = "cassandra"
    main_class = "org.apache.cassandra.service.CassandraDaemon"
    ready_timeout = 240.0

    def ports(self) -> dict[str, int]:
        c = self.settings.cassandra
        return {"port": c.port, "storage_port": c.storage_port}

    @property
    def config_file(self):
        return self.home / "cassandra.yaml"

    def render_config(self) -> str:
        c = self.settings.cassandra
        template = (INFRA / "cassandra" / "cassandra.yaml").read_text()
        return template.format(port=c.port, storage_port=c.storage_port, data_dir=self.data_dir)

    def prepare(self) -> None:
        self.config_file.write_text(self.render_config())

    def module_flags(self) -> list[str]:
        lines = (INFRA / "cassandra" / "jvm17-server.options").read_text().splitlines()
        return [part for line in lines if line and not line.startswith("#") for part in line.split()]

    def jvm_args(self) -> list[str]:
        heap = self.settings.cassandra.heap
        jamm = sorted(self.jars.glob("jamm-*.jar"))
        return [
            f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=300",
            "-Xss512k", "-XX:+PerfDisableSharedMem", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.net.preferIPv4Stack=true",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.config={self.config_file.as_uri()}",
            f"-Dcassandra.storagedir={self.data_dir}",
            f"-Dcassandra.logdir={self.log_dir}",
            f"-Dlogback.configurationFile={(INFRA / 'cassandra' / 'logback.xml').as_uri()}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            *(f"-javaagent:{path}" for path in jamm[:1]),
            *self.module_flags(),
        ]

    def answers(self) -> bool:
        from ticklake.provision import cassandra_cluster

        cluster = cassandra_cluster(self.settings, connect_timeout=3, control_connection_timeout=3)
        try:
            session = cluster.connect()
            session.execute("SELECT release_version FROM system.local", timeout=5)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not yet"
            return False
        finally:
            cluster.shutdown()
