"""A harness run in a child Python that ends as the test says (context exit, exception, Ctrl-C,
SIGKILL), so a test can check what the harness left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tools.cluster import processes
from tools.cluster.toolbox import REPO_ROOT


def run_harness(script: str, ending: str, timeout: float) -> dict:
    """Run `script` in a child Python that ends as `ending` says; return the JSON it printed first."""
    result = subprocess.run(
        [sys.executable, "-c", script, ending],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert result.stdout, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[0])


def wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """The pids still alive after `timeout` seconds (none once they have all exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if processes.alive(pid)]
        if not left:
            return []
        time.sleep(0.1)
    return left
