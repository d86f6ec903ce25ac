"""Process groups, their CPU time, memory and niceness, from /proc (ticklake/processes.py), on real child processes."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from ticklake.processes import (cpu_seconds, group_alive, nice_session, peak_rss_kb, pid_alive, stat_fields,
                                terminate_groups, wait_groups_gone)


def test_terminate_ends_a_process_group_and_kills_what_ignores_sigterm():
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                               "print('ready', flush=True); time.sleep(60)"],
        start_new_session=True, stdout=subprocess.PIPE, text=True,
    )
    assert stubborn.stdout.readline().strip() == "ready"
    started = time.monotonic()
    terminate_groups([polite.pid, stubborn.pid], timeout=1.0)
    assert polite.wait(timeout=5) == -15 and stubborn.wait(timeout=5) == -9
    assert time.monotonic() - started < 10


def test_a_group_lives_while_any_member_does_and_zombies_do_not_count():
    # The leader starts a grandchild in its group and exits: the group goes on without it.
    leader = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print('ok')"],
                              start_new_session=True, stdout=subprocess.PIPE, text=True)
    assert leader.stdout.readline().strip() == "ok"
    assert leader.wait(timeout=10) == 0
    assert group_alive(leader.pid) and not pid_alive(leader.pid)
    assert not wait_groups_gone([leader.pid], 0.3)
    terminate_groups([leader.pid], timeout=5)
    assert not group_alive(leader.pid)


def test_an_exited_child_not_yet_reaped_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    deadline = time.monotonic() + 10
    while (stat_fields(child.pid) or ["Z"])[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stat_fields(child.pid)[0] == "Z"  # a zombie until reaped
    assert not pid_alive(child.pid) and not group_alive(child.pid)
    child.wait()
    assert stat_fields(child.pid) is None


def test_the_flink_gateway_is_found_in_the_group_the_pid_file_names(tmp_path):
    """``flink_live.gateway_pid``: the member of the job's group whose command line holds PyFlink's
    gateway class (as a part of one argument, the class's full name)."""
    from jobs import flink_live
    from ticklake.config import Settings

    settings = Settings(state_dir=tmp_path)
    gateway = subprocess.Popen(["bash", "-c", f"exec -a org.apache.flink.client.python.{flink_live.MAIN_CLASS} sleep 60"],
                               start_new_session=True)
    try:
        pid_file = flink_live.paths(settings)["pid"]
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(gateway.pid))
        deadline = time.monotonic() + 10
        while flink_live.gateway_pid(settings) is None and time.monotonic() < deadline:
            time.sleep(0.1)  # until bash has exec'd
        assert flink_live.gateway_pid(settings) == gateway.pid
    finally:
        gateway.kill()
        gateway.wait()


def test_cpu_time_and_peak_memory_of_a_process():
    busy = subprocess.Popen([sys.executable, "-c", "import sys, time\nblock = bytearray(64 << 20)\n"
                             "end = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
                             "print('done', flush=True); sys.stdin.read()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout.readline().strip() == "done"
        assert 0.5 <= cpu_seconds(busy.pid) < 30
        assert peak_rss_kb(busy.pid) >= 64 << 10
    finally:
        busy.kill()
        busy.wait()
    assert cpu_seconds(busy.pid) == 0 and peak_rss_kb(busy.pid) == 0  # gone


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="the kernel has no autogroup scheduling")
def test_a_job_session_gets_its_niceness_under_autogroup_scheduling():
    own = Path("/proc/self/autogroup").read_text()
    process = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        nice_session(process.pid, 10)
        assert Path(f"/proc/{process.pid}/autogroup").read_text().split()[-1] == "10"
        assert Path("/proc/self/autogroup").read_text() == own  # the launcher's session keeps its own
    finally:
        process.kill()
        process.wait()
