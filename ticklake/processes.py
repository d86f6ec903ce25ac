"""The programs ticklake starts, seen from outside: whether a process or a process group still
runs (what ``/proc`` says of it), and ending a group, which each program leads (a session of its
own, so a JVM goes with the script that started it).

A process that has exited but is not yet reaped (a zombie) still counts while it has threads
other than its main one: until they are gone its sockets stay open.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, ...); None when gone."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def processes() -> Iterator[tuple[int, list[str]]]:
    """Every process as ``(pid, stat_fields)``."""
    for entry in PROC.glob("[0-9]*"):
        fields = stat_fields(int(entry.name))
        if fields is not None:
            yield int(entry.name), fields


def command_line(pid: int) -> list[bytes] | None:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` so far, in seconds (0 once it is gone)."""
    fields = stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kb(pid: int) -> int:
    """The largest resident memory ``pid`` has had (``VmHWM``), in kB; 0 once it is gone."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    return int(next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")), 0))


def nice_session(pid: int, niceness: int) -> None:
    """Give the session ``pid`` leads the ``niceness`` of its processes (0: leave it). With the
    kernel's autogroup scheduling (sched(7); on by default on many Linux systems) the CPU is shared
    between sessions first, and a process's own nice counts only against the processes of its
    session: the streaming job's stores application at ``nice 10`` in a session of its own would
    still get as much as the bars'."""
    if niceness:
        try:
            (PROC / str(pid) / "autogroup").write_text(str(niceness))
        except OSError:
            pass  # no autogroups here (not Linux, or a kernel without them): nice alone applies


def _running(pid: int, fields: list[str]) -> bool:
    if fields[0] != "Z":
        return True
    try:
        return len(os.listdir(PROC / str(pid) / "task")) > 1
    except FileNotFoundError:
        return False  # reaped meanwhile


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = stat_fields(pid)
    return fields is not None and _running(pid, fields)


def runs_main_class(pid: int, main_class: str) -> bool:
    """True if ``pid`` is alive and its command line names ``main_class`` (so a reused pid is not ours)."""
    cmdline = command_line(pid)
    return cmdline is not None and main_class.encode() in cmdline and pid_alive(pid)


def group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    return any(int(fields[2]) == pgid and _running(pid, fields) for pid, fields in processes())


def wait_groups_gone(pgids: list[int], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the groups to end; True if they did."""
    deadline = time.monotonic() + timeout
    while any(group_alive(pgid) for pgid in pgids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def signal_groups(pgids: list[int], sig: int) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass  # already gone


def terminate_groups(pgids: list[int], timeout: float) -> bool:
    """SIGTERM each process group, SIGKILL what outlives ``timeout``, and return once all are gone,
    so their ports are free again. True if SIGTERM was enough."""
    signal_groups(pgids, signal.SIGTERM)
    if wait_groups_gone(pgids, timeout):
        return True
    kill_groups(pgids)
    return False


def kill_groups(pgids: list[int]) -> None:
    """SIGKILL each process group and wait (up to 10 s) until they are gone."""
    signal_groups(pgids, signal.SIGKILL)
    wait_groups_gone(pgids, 10.0)
