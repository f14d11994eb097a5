"""wrk as the load generator: fixed threads, connections and duration, one result line per run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

LUA_DIR = Path(__file__).resolve().parent / "lua"
# A request slower than this counts as a (socket) timeout error.
REQUEST_TIMEOUT_SECONDS = 5


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk not found (apt-get install wrk)")
    return found


def run_wrk(
    url: str,
    script: str,
    script_args: list[str],
    *,
    duration: float,
    connections: int,
    threads: int,
    token: str,
) -> dict[str, Any]:
    """Load `url` with bench/lua/<script>; the parsed BENCH_RESULT line plus req/s and error counts."""
    argv = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={REQUEST_TIMEOUT_SECONDS}s",
        "-H",
        f"Authorization: Bearer {token}",
        "-s",
        script,
        url,
        "--",
        *script_args,
    ]
    # cwd = the scripts' folder, so `require "common"` finds common.lua on Lua's default ./?.lua path.
    process = subprocess.Popen(  # noqa: S603  # wrk from PATH, arguments built here
        argv, cwd=LUA_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=duration + 60)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    lines = [line for line in stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}) on {url} with {script}:\n{stdout}\n{stderr}")
    raw = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    # wrk counts no error when a server accepts and then never answers at all: every connection's
    # request is a failure then, and the run is flagged.
    stalled = raw["requests"] == 0
    if stalled:
        socket_errors += connections
    return {
        "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        # wrk counts a response as a status error when its status is >= 400; none of these endpoints
        # answers 1xx or 3xx (no conditional headers are sent), so that is every non-2xx.
        "non_2xx": raw["status"],
        "socket_errors": socket_errors,
        "errors": raw["status"] + socket_errors,
        "stalled": stalled,
        "wrk": raw,
    }
