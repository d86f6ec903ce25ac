"""A local service that runs as one detached JVM process, with its state in one folder."""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ticklake.config import PROJECT_ROOT, Settings
from ticklake.services.process import (
    ServiceError,
    java_binary,
    pid_alive,
    port_in_use,
    read_pid,
    runs_main_class,
    tail,
)

Progress = Callable[[str], None]
INFRA = PROJECT_ROOT / "infra"


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    ports: dict[str, int]
    log_file: Path
    data_dir: Path
    started_seconds: float | None = None


@dataclass
class StartedProcess:
    pid: int
    started_at: float = field(default_factory=time.monotonic)


class JvmService:
    """Subclasses say how to configure, launch and probe one service."""

    name: str
    main_class: str
    ready_timeout: float = 180.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.services_dir / self.name
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.log_file = self.log_dir / f"{self.name}.out"
        self.pid_file = self.home / f"{self.name}.pid"
        self.jars = settings.jars_dir / self.name

    # --- what a service defines -------------------------------------------------------
    def ports(self) -> dict[str, int]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration and initialise storage before a start."""

    def jvm_args(self) -> list[str]:
        raise NotImplementedError

    def program_args(self) -> list[str]:
        return []

    def answers(self) -> bool:
        """True once the service serves clients."""
        raise NotImplementedError

    # --- shared behaviour -------------------------------------------------------------
    def classpath(self) -> str:
        if not self.jars.is_dir() or not any(self.jars.glob("*.jar")):
            raise ServiceError(f"no {self.name} jars in {self.jars}: run infra/fetch-jars.sh (or make bootstrap)")
        return f"{self.jars}/*"

    def running_pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        return pid if pid is not None and runs_main_class(pid, self.main_class) else None

    def status(self) -> ServiceStatus:
        pid = self.running_pid()
        return ServiceStatus(self.name, pid is not None, pid, self.ports(), self.log_file, self.data_dir)

    def start(self) -> StartedProcess | None:
        """Launch the JVM unless ours already runs. None if it was running."""
        if self.running_pid() is not None:
            return None
        self.pid_file.unlink(missing_ok=True)  # stale: its process is gone or is not ours
        for role, port in self.ports().items():
            if port_in_use(port):
                raise ServiceError(
                    f"{self.name}: port {port} ({role}) is taken by another process. Stop it "
                    f"(ss -ltnp 'sport = :{port}' shows which) or choose another port with "
                    f"TICKLAKE_{self.name.upper()}__{role.upper()}"
                )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        command = [java_binary(), *self.jvm_args(), "-cp", self.classpath(), self.main_class, *self.program_args()]
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.home, start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        return StartedProcess(process.pid)

    def wait_ready(self, started: StartedProcess | None, progress: Progress) -> float | None:
        """Block until the service answers; seconds since its start, None if it was running."""
        deadline = time.monotonic() + self.ready_timeout
        last_note = 0.0
        while not self.answers():
            pid = started.pid if started else self.running_pid()
            if pid is None or not pid_alive(pid):
                raise ServiceError(f"{self.name} exited during start; log {self.log_file}:\n{tail(self.log_file)}")
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.name} did not answer within {self.ready_timeout:.0f} s; "
                                   f"log {self.log_file}:\n{tail(self.log_file)}")
            if time.monotonic() - last_note > 15:
                progress(f"waiting for {self.name} ...")
                last_note = time.monotonic()
            time.sleep(1)
        return time.monotonic() - started.started_at if started else None

    def stop(self, progress: Progress, timeout: float = 60.0) -> None:
        pid = self.running_pid()
        if pid is not None:
            progress(f"stopping {self.name} (pid {pid}) ...")
            _signal_and_wait(pid, timeout)
        self.pid_file.unlink(missing_ok=True)

    def wipe(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def _signal_and_wait(pid: int, timeout: float) -> None:
    import os

    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
