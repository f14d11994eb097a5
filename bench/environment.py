"""What the machine was doing during a run: CPUs, load, versions and the busiest other processes."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _output(*argv: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(  # noqa: S603  # fixed argv from this module
            argv, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT
        )
        return (result.stdout or result.stderr).strip()
    return ""


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def busiest_processes(count: int = 5) -> list[str]:
    """Other processes using CPU when the run starts (the machine may be shared)."""
    rows = _output("ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers").splitlines()
    mine = {"ps", "python", "python3", "make"}
    return [" ".join(row.split()) for row in rows if row.split()[-1] not in mine][:count]


def describe() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": _output("wrk", "--version").splitlines()[0] if _output("wrk", "--version") else "",
        "git_commit": _output("git", "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_output("git", "status", "--porcelain", "--untracked-files=no")),
        "load_average_start": load_average(),
        "busiest_processes_start": busiest_processes(),
    }
