"""`ansible-playbook site.yml -i inventories/ci` by hand on the real cluster as `make cluster-up`
gives it (a real node, its storage provisioner, the CRDs): it converges, and the claims the
platform makes (the registry's, the scan's Trivy cache) are bound by the provisioner, with no volume
made by hand. The default class binds a claim when its first pod is scheduled: the registry's pod
binds its claim during the converge, while the Trivy cache has no pod until a scan runs, so a pod on
the real node mounts it here.
The platform's pods do not tolerate the real node's taint, so kwok runs them: their images are on
registries this machine cannot reach."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.ansible.playbook import run_playbook
from tests.support.process_tier import wait_until
from tests.support.tiers import skip_or_fail
from tools.cluster.controlplane import ControlPlane
from tools.cluster.realnode import RealNodes
from tools.cluster.toolbox import REPO_ROOT, missing
from tools.cluster.upstream import assemble

from .pods import bound_volume, shell_pod

pytestmark = pytest.mark.realnode


def claims(plane: ControlPlane) -> dict[tuple[str, str], str]:
    """Every claim's phase by (namespace, name); each is of the default class (local-path)."""
    items = json.loads(plane.kubectl("get", "pvc", "--all-namespaces", "-o", "json").stdout)["items"]
    assert {c["spec"]["storageClassName"] for c in items} == {"local-path"}, items
    return {(c["metadata"]["namespace"], c["metadata"]["name"]): c["status"]["phase"] for c in items}


def test_site_converges_and_the_platforms_claims_bind_through_the_provisioner(real_cluster: RealNodes):
    plane = real_cluster.plane
    assert plane is not None
    absent = missing(["helm", "kustomize", "cosign"])
    if absent:
        skip_or_fail(f"the site converge needs `make tools` (.tools/bin lacks {', '.join(absent)})")
    assemble()
    registry = yaml.safe_load((REPO_ROOT / "roles" / "registry" / "defaults" / "main.yml").read_text())
    scan = yaml.safe_load((REPO_ROOT / "roles" / "argo_workflows" / "defaults" / "main.yml").read_text())

    run = run_playbook("site.yml", kubeconfig=plane.kubeconfig)
    print(f"\nsite.yml converged on the real cluster in {run.seconds} s")

    assert run.returncode == 0, run.explain()
    trivy_cache = (scan["argo_workflows_namespace"], "trivy-cache")
    assert claims(plane) == {
        (registry["registry_namespace"], f"{registry['registry_name']}-data"): "Bound",
        trivy_cache: "Pending",
    }
    namespace, name = trivy_cache
    plane.apply([shell_pod("mount-trivy-cache", namespace, name, "true")])
    wait_until(lambda: bound_volume(plane, name, namespace), 180, "the Trivy cache Bound", interval=0.3)
    assert set(claims(plane).values()) == {"Bound"}
    volumes = json.loads(plane.kubectl("get", "pv", "-o", "json").stdout)["items"]
    assert {v["spec"]["storageClassName"] for v in volumes} == {"local-path"}
