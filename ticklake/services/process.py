"""Pid-file, port and log helpers for the local services (processes: ticklake.processes)."""
from __future__ import annotations

import socket
from pathlib import Path


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
