"""`make stack-down` stops exactly what `make stack` started: each process by the pid it was started with,
with everything that process started, and nothing else on the machine."""

from __future__ import annotations

import subprocess
import sys

from testbed.airflow_stack import _session
from tests.stack.conftest import wait_for

PARENT_AND_CHILD = "import subprocess, time; subprocess.Popen(['sleep', '600']); time.sleep(600)"


def test_a_stopped_process_takes_its_children_and_nothing_else(stack):
    outside = subprocess.Popen(["sleep", "600"])  # not the stack's: must survive
    try:
        pid = stack.start("probe", [sys.executable, "-c", PARENT_AND_CHILD])
        members = wait_for(lambda: len(_session(pid)) == 2 and _session(pid), 30)
        stack.stop("probe")
        assert not _session(pid), members
        assert "probe" not in stack.state["pids"]
        assert outside.poll() is None
        running = {name for name in stack.state["pids"] if stack.pid(name)}
        assert {"scheduler", "api-server", "dag-processor", "triggerer", "worker-1", "worker-2", "redis"} <= running
    finally:
        outside.kill()
        outside.wait()
