"""Gitops-tier fixtures: the real Argo Workflows controller and `argo server` on the real-node
cluster (tools/cluster/argo_workflows.py), for the whole session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.tiers import skip_or_fail
from tools.cluster import processes
from tools.cluster.argo_workflows import ArgoWorkflows
from tools.cluster.realnode import RealNodes, host
from tools.cluster.toolbox import missing


@pytest.fixture(scope="session")
def argo_workflows(real_cluster: RealNodes, node_image: str) -> Iterator[ArgoWorkflows]:
    """workflow-controller and `argo server`; Workflow pods pull the executor from node_image's registry."""
    absent = missing(["argo", "workflow-controller", "argoexec"])
    absent += [] if shutil.which("buildah") else ["buildah"]
    if absent:
        skip_or_fail(f"gitops tier needs {', '.join(absent)} (`make tools`; apt-get install buildah)")
    argo = ArgoWorkflows(real_cluster, node_image.split("/")[0]).start()
    print(f"\nargo workflows up: {argo.startup_seconds} s, executor {argo.executor_image}")
    children = list(argo.group.children)
    try:
        yield argo
    finally:
        argo.stop()
        left = [f"process {c.name}" for c in children if processes.alive(c.pid)]
        left += [f"chain {chain}" for chain in host.chains_named(argo.chain)]
        left += (
            [f"namespace {argo.namespace}"]
            if argo.plane.kubectl("get", "ns", argo.namespace, check=False).returncode == 0
            else []
        )
        left += [f"state directory {argo.state_dir}"] if argo.state_dir.exists() else []
        assert not left, f"Argo Workflows left this behind: {left}"
