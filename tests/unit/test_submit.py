"""Launching Spark jobs: the niceness of a job's session."""
import subprocess
from pathlib import Path

import pytest

from ticklake.submit import nice_session


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
