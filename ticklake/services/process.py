"""Process, pid-file and port helpers for the local services."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from pathlib import Path


class ServiceError(Exception):
    """A local service could not be started, reached or stopped; the message says what to do."""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _exited_unreaped(pid)


def _exited_unreaped(pid: int) -> bool:
    """A process that has died but is not yet reaped (a JVM started by this very Python process).

    Its main thread turns zombie first; only when its other threads are gone too are its
    sockets closed, so until then it still counts as alive.
    """
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state == "Z" and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True  # reaped meanwhile


def runs_main_class(pid: int, main_class: str) -> bool:
    """True if ``pid`` is alive and its command line names ``main_class`` (so a reused pid is not ours)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return main_class.encode() in cmdline and pid_alive(pid)


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 20, after: str | None = None) -> str:
    """The last ``lines`` lines of a log, none from before the last line that starts with ``after``."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    if after is not None:
        starts = [i for i, line in enumerate(text) if line.startswith(after)]
        text = text[starts[-1]:] if starts else text
    return "\n".join(text[-lines:]) if text else "(log is empty)"


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if not found:
        raise ServiceError("Java was not found: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless) "
                           "or set JAVA_HOME")
    return found


def terminate_groups(pids: list[int], timeout: float) -> None:
    """SIGTERM each process group (the JVMs lead their own sessions), SIGKILL what outlives ``timeout``,
    and return once all are gone, so their ports are free again."""
    _signal_groups(pids, signal.SIGTERM)
    if not _wait_dead(pids, timeout):
        _signal_groups(pids, signal.SIGKILL)
        _wait_dead(pids, 10.0)


def _signal_groups(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass  # already gone


def _wait_dead(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
