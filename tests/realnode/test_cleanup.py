"""A real node leaves the host as it found it: a harness that holds a node with a running pod and
then ends normally (interpreter exit) or is SIGKILLed (only the next run's sweep can clean up)
leaves none of the following, checked by realnode.cleanup.leftovers:

- a process naming the run's state directory (kubelet, kube-proxy, containerd, runc shims);
- the run's cgroup in any hierarchy (the pods' processes live there);
- a mount at or under the state directory, or the directory itself;
- the run's bridge, its egress-guard chain, a /var/log/containers link into the run;
- the NetworkPolicy enforcer's (kube-router's) chains and ipsets (the harness runs it with a
  policy in place, so it has written both);
- when no other run is alive: a KUBE-* chain in any iptables or ip6tables table, a kernel setting
  that differs from before the run (ip_forward and the kubelet's six), or one of /var/lib/kubelet,
  /var/log/containers, /run/containerd that did not exist before (network namespaces are mounts
  under the state directory, so the mount check covers them).

In the whole suite the session's cluster (tests/conftest.py) is alive by then, started by the
gitops tier, so the host-wide checks of the last item are left to its teardown, which runs them
once no run is alive."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.harness import run_harness
from tests.support.tiers import skip_or_fail
from tools.cluster import processes, realnode
from tools.cluster.controlplane import STATE_PREFIX as PLANE_PREFIX
from tools.cluster.realnode.cleanup import leftovers, live_runs

pytestmark = pytest.mark.realnode

# Starts a plane with one real node and the policy enforcer, runs a pod on it (the sandbox image
# itself: no registry) under a deny-all policy, prints the node's record, then ends the way the
# test asks.
HARNESS = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from tools.cluster.realnode import host, on_real_node, start_cluster
    from tools.cluster.realnode.pause import image_name
    from tools.cluster.toolbox import tool
    plane, nodes = start_cluster(1)
    nodes.enforce_network_policies()
    container = {"name": "hold", "image": image_name(tool("pause")), "imagePullPolicy": "Never"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hold", "namespace": "default"},
           "spec": on_real_node({"containers": [container]})}
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "default"}, "spec": {"podSelector": {}}}
    plane.apply([pod, deny])
    plane.kubectl("wait", "--for=condition=Ready", "pod/hold", "--timeout=120s")
    while not any(n.startswith("KUBE-DST-") for n in host.ipsets_named(("KUBE-",))):
        time.sleep(0.2)
    record = json.loads((nodes.state_dir / "node.json").read_text())
    print(json.dumps({"state_dir": str(nodes.state_dir), "plane": str(plane.state_dir), "record": record}), flush=True)
    if sys.argv[1] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("ending", ["exits", "killed"])
def test_nothing_of_the_node_is_left(ending):
    unmet = realnode.unmet_prerequisites()
    if unmet:
        skip_or_fail(f"realnode tier needs {'; '.join(unmet)}")
    alone = not live_runs()

    held = run_harness(HARNESS, ending, timeout=300)

    state_dir = Path(held["state_dir"])
    if ending == "killed":  # nobody ran the teardown; the next harness's sweeps do
        assert state_dir.exists()
        realnode.sweep_stale()
        processes.sweep_stale(Path(held["plane"]).parent, PLANE_PREFIX)
    assert leftovers(state_dir, held["record"], shared=alone) == []
    assert not Path(held["plane"]).exists()
