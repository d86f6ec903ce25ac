"""A local service that runs as one detached JVM process, with its state in one folder."""
from __future__ import annotations

from ticklake.config import PROJECT_ROOT, Settings
from ticklake.services.local import LocalService
from ticklake.java import java_binary
from ticklake.errors import ServiceError

INFRA = PROJECT_ROOT / "infra"


class JvmService(LocalService):
    """A service run from the jars of the jar cache. Its configuration is rendered from the
    template of the same name in ``infra/<name>/``. With a ``metrics_port``, the JVM carries the
    Prometheus JMX exporter agent, configured by ``infra/<name>/jmx-exporter.yml``, on loopback."""

    main_class: str
    infra_name = ""  # its folder of infra/ (templates, exporter configuration); empty: its name

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.jars = settings.jars_dir / self.name

    # --- what a service defines -------------------------------------------------------
    def config_values(self) -> dict[str, object]:
        raise NotImplementedError

    def heap(self) -> str:
        raise NotImplementedError

    def metrics_port(self) -> int:
        """The JMX exporter's port; 0: no exporter."""
        return 0

    def service_jvm_args(self) -> list[str]:
        return []

    def program_args(self) -> list[str]:
        return []

    def prepare(self) -> None:
        self.config_file.write_text(self.render_config())

    # --- shared behaviour -------------------------------------------------------------
    @property
    def marker(self) -> str:
        return self.main_class

    def render_config(self) -> str:
        template = (INFRA / (self.infra_name or self.name) / self.config_name).read_text()
        return template.format(**self.config_values())

    def metrics_ports(self) -> dict[str, int]:
        """``{"metrics_port": port}`` with an exporter, for ``ports()``."""
        return {"metrics_port": self.metrics_port()} if self.metrics_port() else {}

    def exporter_agent(self) -> list[str]:
        port = self.metrics_port()
        if not port:
            return []
        jars = sorted((self.settings.jars_dir / "jmx-exporter").glob("jmx_prometheus_javaagent-*.jar"))
        if not jars:
            raise ServiceError(f"no JMX exporter agent in {self.settings.jars_dir / 'jmx-exporter'}: run "
                               f"infra/fetch-jars.sh (or make bootstrap), or set TICKLAKE_{self.name.upper()}__METRICS_PORT=0")
        return [f"-javaagent:{jars[-1]}=127.0.0.1:{port}:{INFRA / (self.infra_name or self.name) / 'jmx-exporter.yml'}"]

    def jvm_args(self) -> list[str]:
        heap = self.heap()
        return [
            f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            "-Djava.net.preferIPv4Stack=true", "-Djava.awt.headless=true",
            *self.service_jvm_args(), *self.exporter_agent(),
        ]

    def classpath(self) -> str:
        if not self.jars.is_dir() or not any(self.jars.glob("*.jar")):
            raise ServiceError(f"no {self.name} jars in {self.jars}: run infra/fetch-jars.sh (or make bootstrap)")
        return f"{self.jars}/*"

    def check_runtime(self) -> None:
        java_binary()
        self.classpath()
        self.exporter_agent()

    def command(self) -> list[str]:
        return [java_binary(), *self.jvm_args(), "-cp", self.classpath(), self.main_class, *self.program_args()]
