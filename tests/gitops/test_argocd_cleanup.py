"""Argo CD's harness leaves nothing behind: a control plane with Argo CD, in a subprocess that
ends normally, raises, or is SIGKILLed, takes redis and the four Argo CD components with it,
frees their ports, and its state (redis, repo clones, TLS and GPG dirs) goes, at the latest
with the next harness's stale-pidfile sweep. kwok nodes suffice: this is about processes."""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.harness import run_harness, wait_gone
from tests.support.tiers import skip_or_fail
from tools.cluster import argocd, processes
from tools.cluster.controlplane import STATE_PREFIX as PLANE_PREFIX

pytestmark = pytest.mark.gitops

HARNESS = textwrap.dedent(
    """
    import json, os, signal, sys
    from tools.cluster.argocd import ArgoCD
    from tools.cluster.controlplane import ControlPlane
    from tools.cluster.processes import read_pidfile
    plane = ControlPlane(install_crds=False).start()  # ArgoCD applies its own three
    cd = ArgoCD(plane).start()
    print(json.dumps({"state_dir": str(cd.state_dir), "plane": str(plane.state_dir), "ports": cd.ports,
                      **read_pidfile(cd.state_dir)}), flush=True)
    ending = sys.argv[1]
    if ending == "context-exit":
        cd.stop()
        plane.stop()
    elif ending == "exception":
        raise RuntimeError("a test failed")
    elif ending == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


def _free(port: int) -> bool:
    """Nothing listens on `port` (connections the stopped processes closed may linger in TIME_WAIT)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# A killed listener's accepted connections can sit half-closed (FIN_WAIT_2) on its port for up to
# net.ipv4.tcp_fin_timeout (60 s), which a bind refuses even with SO_REUSEADDR; a process that
# survived would hold its port for good.
PORT_GRACE = 90


def _bound_after(ports, grace: float) -> list[int]:
    """The ports still bound once `grace` seconds have passed (or none, as soon as all are free)."""
    deadline = time.monotonic() + grace
    while (bound := [port for port in ports if not _free(port)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    return bound


@pytest.mark.parametrize("ending", ["context-exit", "exception", "killed"])
def test_no_argocd_process_port_or_file_survives_the_harness(ending):
    unmet = argocd.unmet_prerequisites()
    if unmet:
        skip_or_fail(f"gitops tier needs {'; '.join(unmet)}")

    record = run_harness(HARNESS, ending, timeout=300)

    names = {child["name"] for child in record["children"]}
    assert names == {"redis", "repo-server", "application-controller", "applicationset-controller", "argocd-server"}
    assert wait_gone([child["pid"] for child in record["children"]]) == [], f"{ending}: processes survived"
    bound = _bound_after(record["ports"].values(), PORT_GRACE)
    assert bound == [], f"{ending}: still bound {PORT_GRACE} s after the processes went"
    state_dir, plane = Path(record["state_dir"]), Path(record["plane"])
    if ending == "killed":  # nobody could remove the state; the next harness's sweeps do
        assert state_dir.exists()
        assert state_dir in processes.sweep_stale(state_dir.parent, argocd.STATE_PREFIX)
        processes.sweep_stale(plane.parent, PLANE_PREFIX)
    assert not state_dir.exists()
    assert not plane.exists()
