"""The harness leaves no process behind: a second control plane, run in a subprocess that ends
normally, raises, or is killed outright, takes etcd, the apiserver and the rest with it."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.harness import run_harness, wait_gone
from tests.support.postgres import find_bindir, sweep_stale_servers
from tests.support.tiers import skip_or_fail
from tools.cluster import processes
from tools.cluster.toolbox import CONTROL_PLANE_BINARIES, missing

pytestmark = pytest.mark.cluster

# Starts a control plane (no CRDs: this is about processes), prints its pid file, then ends the
# way the test asks. "killed" leaves no chance for finalisers or atexit: only the kernel's
# parent-death signal and the next harness's stale-pidfile sweep can clean up.
HARNESS = textwrap.dedent(
    """
    import json, os, signal, sys
    from tools.cluster.controlplane import ControlPlane
    from tools.cluster.processes import read_pidfile
    plane = ControlPlane(install_crds=False).start()
    print(json.dumps({"state_dir": str(plane.state_dir), **read_pidfile(plane.state_dir)}), flush=True)
    ending = sys.argv[1]
    if ending == "context-exit":
        plane.stop()
    elif ending == "exception":
        raise RuntimeError("a test failed")
    elif ending == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    elif ending == "interrupted":
        os.kill(os.getpid(), signal.SIGINT)
    """
)


@pytest.mark.parametrize("ending", ["context-exit", "exception", "interrupted", "killed"])
def test_no_process_survives_the_harness(ending):
    absent = missing(CONTROL_PLANE_BINARIES)
    if absent:
        skip_or_fail(f"cluster tier needs `make tools` (.tools/bin lacks {', '.join(absent)})")

    record = run_harness(HARNESS, ending, timeout=180)

    names = {child["name"] for child in record["children"]}
    assert names == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    pids = [child["pid"] for child in record["children"]]
    assert wait_gone(pids) == [], f"{ending}: processes survived the harness"
    state_dir = Path(record["state_dir"])
    if ending == "killed":  # nobody could remove the state; the next harness's sweep does
        processes.sweep_stale(state_dir.parent, state_dir.name)
    assert not state_dir.exists()


def test_sweep_stops_processes_of_a_dead_harness(tmp_path):
    state_dir = tmp_path / "catalog-controlplane-stale"
    state_dir.mkdir()
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    # The sweep signals a pid only while its command line names the recorded executable: on a busy
    # machine /proc may not show `sleep` yet, and the sweep would rightly leave the pid alone.
    deadline = time.monotonic() + 5
    while "sleep" not in processes._cmdline(sleeper.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    record = {
        "owner": 2**22 + 1,  # above the kernel's PID_MAX_LIMIT (2**22): never a live process
        "detached": False,
        "children": [{"name": "sleeper", "pid": sleeper.pid, "executable": "sleep"}],
    }
    (state_dir / processes.PIDFILE).write_text(json.dumps(record))

    try:
        swept = processes.sweep_stale(tmp_path, "catalog-controlplane-")

        assert swept == [state_dir]
        assert wait_gone([sleeper.pid]) == []
        assert not state_dir.exists()
    finally:
        sleeper.kill()
        sleeper.wait(timeout=5)


# A throwaway PostgreSQL (the tests' and the bench's), its harness SIGKILLed once it is up.
POSTGRES_HARNESS = textwrap.dedent(
    """
    import json, os, signal, sys
    from tests.support.postgres import find_bindir, throwaway_server
    with throwaway_server(find_bindir(), prefix="catalog-pg-killed-") as server:
        print(json.dumps({"root": str(server.root), "pids": server.processes()}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_harness_postgresql_is_swept_by_the_next_one():
    bindir = find_bindir()
    if bindir is None:
        skip_or_fail("the PostgreSQL harness needs PostgreSQL's server binaries (apt-get install postgresql)")
    held = run_harness(POSTGRES_HARNESS, "killed", timeout=120)
    root = Path(held["root"])
    assert root.exists()
    assert processes.alive(held["pids"][0])  # pg_ctl daemonised it: it outlives the kill

    assert sweep_stale_servers(bindir, "catalog-pg-killed-") == [root]

    assert not root.exists()
    assert [pid for pid in held["pids"] if processes.alive(pid)] == []
