"""A local service that runs as one detached process, with its state in one folder."""
from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ticklake.config import Settings
from ticklake.processes import pid_alive, runs_main_class, terminate_groups
from ticklake.errors import ServiceError
from ticklake.services.process import port_in_use, read_pid, tail

Progress = Callable[[str], None]
STOP_TIMEOUT = 30.0
LAUNCH_MARK = "--- ticklake: launching"  # starts each run's part of the stdout log


@dataclass
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    ports: dict[str, int]
    log_file: Path
    data_dir: Path
    started_seconds: float | None = None  # how long the start took, if this call started it


@dataclass
class StartedProcess:
    pid: int
    started_at: float  # time.monotonic() when the launch began, storage formatting included


class LocalService:
    """One service: subclasses say how to configure, launch and probe it.

    Its home ``services_dir/<name>/`` holds the rendered ``config_name``, the pid file,
    ``data/`` and ``logs/`` (the process's stdout and stderr go to ``logs/<name>.out``).
    """

    name: str
    config_name: str
    settings_section: str = ""  # the settings section of its ports; empty: its name
    client_role: str = "port"  # the role of ports() that clients connect to
    ready_timeout: float = 180.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.services_dir / self.name
        self.data_dir = self.home / "data"
        self.log_dir = self.home / "logs"
        self.log_file = self.log_dir / f"{self.name}.out"
        self.pid_file = self.home / f"{self.name}.pid"
        self.config_file = self.home / self.config_name

    # --- what a service defines -------------------------------------------------------
    def ports(self) -> dict[str, int]:
        """Role -> port; each role is also the setting's name
        (``TICKLAKE_<SECTION>__<ROLE>``, the section being ``settings_section`` or the name)."""
        raise NotImplementedError

    @property
    def marker(self) -> str:
        """An element of the command line that only this service's process has."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def check_runtime(self) -> None:
        """Fail with what to install if the program to run is missing."""

    def answers(self) -> bool:
        """True once the service serves clients on loopback."""
        raise NotImplementedError

    def environment(self) -> dict[str, str] | None:
        """The process's environment variables; None: this process's."""
        return None

    def prepare(self) -> None:
        """Write the configuration (and initialise storage) before a start."""

    def reconfigure(self) -> bool:
        """For a running service: take up a configuration the settings have changed since its
        start, if it can without a restart; True if it did."""
        return False

    # --- shared behaviour -------------------------------------------------------------
    def running_pid(self) -> int | None:
        """The recorded pid if it still runs this service (a dead or reused pid is not ours)."""
        pid = read_pid(self.pid_file)
        return pid if pid is not None and runs_main_class(pid, self.marker) else None

    def status(self) -> ServiceStatus:
        pid = self.running_pid()
        return ServiceStatus(self.name, pid is not None, pid, self.ports(), self.log_file, self.data_dir)

    def check_can_start(self) -> None:
        """Fail before anything is launched if the program or a free port is missing."""
        self.check_runtime()
        section = (self.settings_section or self.name).upper()
        for role, port in self.ports().items():
            if port_in_use(port):
                raise ServiceError(
                    f"{self.name}: port {port} ({role}) is taken by another process. Stop it "
                    f"(ss -ltnp 'sport = :{port}' shows which) or choose another port with "
                    f"TICKLAKE_{section}__{role.upper()}{self.port_hint(role)}"
                )

    def port_hint(self, role: str) -> str:
        """What else to change along with the port of ``role``, if anything."""
        return ""

    def launch(self, progress: Progress) -> StartedProcess:
        """Start the process detached (its own session, so it outlives this command) and record its pid."""
        began = time.monotonic()
        stale = read_pid(self.pid_file)
        if stale is not None:
            progress(f"{self.name}: pid file names {stale}, which is gone or not ours; starting afresh")
            self.pid_file.unlink()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        command = self.command()
        with open(self.log_file, "ab") as log:
            log.write(f"{LAUNCH_MARK} {self.name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.home, start_new_session=True, env=self.environment(),
            )
        self.pid_file.write_text(str(process.pid))
        return StartedProcess(process.pid, began)

    def wait_ready(self, started: StartedProcess | None, progress: Progress) -> float | None:
        """Block until the service answers; seconds since its start, None if it was running before."""
        begun = started.started_at if started else time.monotonic()
        last_note = time.monotonic()
        # Knocking on the client port first spares the client libraries' retries and their log noise.
        while not (port_in_use(self.ports()[self.client_role]) and self.answers()):
            pid = started.pid if started else self.running_pid()
            waited = time.monotonic() - begun
            if pid is None or not pid_alive(pid):
                raise self._start_failed("exited during start")
            if waited > self.ready_timeout:
                raise self._start_failed(f"did not answer within {self.ready_timeout:.0f} s "
                                         f"(pid {pid} left running: 'ticklake down' stops it)")
            if time.monotonic() - last_note > 15:
                progress(f"waiting for {self.name} ({waited:.0f} s so far, log {self.log_file}) ...")
                last_note = time.monotonic()
            time.sleep(0.5)
        return time.monotonic() - begun if started else None

    def _start_failed(self, what: str) -> ServiceError:
        return ServiceError(f"{self.name} {what}; log {self.log_file}:\n{tail(self.log_file, after=LAUNCH_MARK)}")

    def stop(self, progress: Progress, timeout: float = STOP_TIMEOUT) -> None:
        stop_all([self], progress, timeout)

    def wipe(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def stop_all(services: list[LocalService], progress: Progress, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the services together (SIGTERM, then SIGKILL after ``timeout``) and drop their pid files."""
    pids = []
    for service in services:
        pid = service.running_pid()
        if pid is not None:
            progress(f"stopping {service.name} (pid {pid}) ...")
            pids.append(pid)
    terminate_groups(pids, timeout)
    for service in services:
        service.pid_file.unlink(missing_ok=True)
