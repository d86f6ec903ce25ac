"""A Spark standalone master and worker on loopback, from the pyspark installation's jars,
for running the jobs with ``--master spark://...`` the way a cluster runs them."""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

from ticklake.services.jvm import JvmService


def pyspark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class SparkStandaloneService(JvmService):
    """No configuration file: the roles' options are program arguments."""

    config_name = ""

    def heap(self) -> str:
        return "512m"

    def classpath(self) -> str:
        return f"{pyspark_home() / 'conf'}:{pyspark_home() / 'jars'}/*"

    def prepare(self) -> None:
        pass

    def environment(self) -> dict[str, str]:
        # What Spark's bin/ scripts would set: the worker builds its executors' command lines from them.
        (core,) = (pyspark_home() / "jars").glob("spark-core_*.jar")
        scala = core.name.removeprefix("spark-core_").split("-")[0]
        return {**os.environ, "SPARK_HOME": str(pyspark_home()), "SPARK_SCALA_VERSION": scala}

    def service_jvm_args(self) -> list[str]:
        return [f"-Dspark.worker.dir={self.data_dir}", "-Dspark.ui.showConsoleProgress=false"]

    def master_state(self) -> dict | None:
        ui = self.settings.spark.master_ui_port
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=3) as response:
                return json.load(response)
        except (OSError, ValueError):
            return None


class SparkMasterService(SparkStandaloneService):
    name = "spark-master"
    main_class = "org.apache.spark.deploy.master.Master"

    def ports(self) -> dict[str, int]:
        s = self.settings.spark
        return {"port": s.master_port, "master_ui_port": s.master_ui_port}

    def program_args(self) -> list[str]:
        s = self.settings.spark
        return ["--host", "127.0.0.1", "--port", str(s.master_port), "--webui-port", str(s.master_ui_port)]

    def answers(self) -> bool:
        return self.master_state() is not None


class SparkWorkerService(SparkStandaloneService):
    name = "spark-worker"
    main_class = "org.apache.spark.deploy.worker.Worker"

    def ports(self) -> dict[str, int]:
        s = self.settings.spark
        return {"port": s.worker_port, "worker_ui_port": s.worker_ui_port}

    def heap(self) -> str:
        return "256m"

    def program_args(self) -> list[str]:
        s = self.settings.spark
        return ["--host", "127.0.0.1", "--port", str(s.worker_port), "--webui-port", str(s.worker_ui_port),
                "--cores", str(s.worker_cores), "--memory", s.worker_memory, "--work-dir", str(self.data_dir),
                s.standalone_master_url]

    def answers(self) -> bool:
        state = self.master_state()
        return bool(state) and any(w.get("state") == "ALIVE" for w in state.get("workers", []))
