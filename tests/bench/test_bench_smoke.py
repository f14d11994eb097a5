"""`make bench`'s harness in quick mode: every row measured with zero errors, ratios computed, and
no process of the run left behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import find_bindir

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ("get", "list", "list-deep", "create", "stock")
SMALL, LARGE = 200, 400
EXPECTED_ROWS = {
    ("ceiling", "none", 0, "get"),
    *(("floor", "postgresql", SMALL, e) for e in ENDPOINTS),
    *(("catalog-production", "postgresql", SMALL, e) for e in ENDPOINTS),
    *(("catalog-dev", "postgresql", SMALL, e) for e in ENDPOINTS),
    *(("catalog-all-spans", "postgresql", SMALL, e) for e in ENDPOINTS),
    # The scaling runs: the page endpoints on the larger dataset, beside their floors there.
    *((target, "postgresql", LARGE, e) for target in ("floor", "catalog-production") for e in ("list", "list-deep")),
}
MARKER = "BENCH_SMOKE_RUN"

pytestmark = pytest.mark.process


def _processes_with(marker: str) -> list[str]:
    """Processes whose environment carries `marker` (every process the run started inherits it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{entry.name}: {command}")
            except OSError:
                continue
    return found


def test_bench_quick_run_measures_every_row_and_leaves_nothing_running(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        pytest.skip("wrk not found (apt-get install wrk)")
    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    output = tmp_path / "result.json"
    marker = f"{MARKER}={secrets.token_hex(8)}"
    argv = [sys.executable, "-m", "bench", "--engines", "postgresql", "--products", str(SMALL)]
    argv += ["--scale-products", str(LARGE), "--scale-runs", "1", "--soak-seconds", "2", "--soak-interval", "1"]
    argv += ["--duration", "1", "--warmup", "0", "--connections", "8", "--output", str(output)]
    env = {**os.environ, MARKER: marker.split("=", 1)[1]}
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 0, out
    result = json.loads(output.read_text())
    rows = {(r["target"], r["database"], r["products"], r["endpoint"]): r for r in result["rows"]}
    assert set(rows) == EXPECTED_ROWS
    for key, row in rows.items():
        assert row["requests"] > 0, key
        assert row["errors"] == 0, (key, row)
        assert not row["stalled"], key
        assert row["rss_mib_per_worker"], key
        if row["target"].startswith("catalog"):
            assert row["vs_ceiling"] > 0, key
            # Against the floor of the row's own endpoint, by req/s and by CPU.
            assert row["vs_floor"] > 0, key
            assert row["vs_floor_cpu"] > 0, key
            assert row["floor_products"] == row["products"], key
    goals = {g["goal"].split(",")[0]: g for g in result["goals"] if "floor" in g["goal"]}
    assert set(goals) == set(ENDPOINTS), result["goals"]
    assert result["settings"]["production"]["env"]["CATALOG_ENV"] == "production"
    assert set(result["scaling"]) == {"list", "list-deep"}
    assert all(s["ratio"] > 0 for s in result["scaling"].values()), result["scaling"]
    assert set(result["rss_mib_max_per_worker"]) == {str(SMALL), str(LARGE)}
    assert result["soak"]["slices"], result["soak"]
    assert result["soak"]["errors"] == 0, result["soak"]
    assert result["soak"]["worst_growth"] is not None
    assert result["otlp_exports"]["requests"] > 0, "tracing exported nothing to the sink"
    assert output.with_suffix(".md").is_file()
    assert _processes_with(marker) == []
