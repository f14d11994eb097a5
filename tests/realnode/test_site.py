"""`ansible-playbook site.yml -i inventories/ci` by hand on the real cluster as `make cluster-up`
gives it (a real node, its storage provisioner, the CRDs): it converges, and the claims the
platform makes (the registry's, Loki's) are bound by the provisioner, with no volume made by hand.
The platform's pods do not tolerate the real node's taint, so kwok runs them: their images are on
registries this machine cannot reach."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.ansible.playbook import run_playbook
from tests.support.tiers import skip_or_fail
from tools.cluster.realnode import RealNodes
from tools.cluster.toolbox import REPO_ROOT, missing
from tools.cluster.upstream import assemble

pytestmark = pytest.mark.realnode


def test_site_converges_and_the_platforms_claims_bind_through_the_provisioner(real_cluster: RealNodes):
    plane = real_cluster.plane
    assert plane is not None
    absent = missing(["helm", "kustomize", "cosign"])
    if absent:
        skip_or_fail(f"the site converge needs `make tools` (.tools/bin lacks {', '.join(absent)})")
    assemble()
    registry = yaml.safe_load((REPO_ROOT / "roles" / "registry" / "defaults" / "main.yml").read_text())

    run = run_playbook("site.yml", kubeconfig=plane.kubeconfig)
    print(f"\nsite.yml converged on the real cluster in {run.seconds} s")

    assert run.returncode == 0, run.explain()
    claims = json.loads(plane.kubectl("get", "pvc", "--all-namespaces", "-o", "json").stdout)["items"]
    found = {(c["metadata"]["namespace"], c["spec"]["storageClassName"], c["status"]["phase"]) for c in claims}
    assert (registry["registry_namespace"], "local-path", "Bound") in found
    assert {phase for _, _, phase in found} == {"Bound"}, found
    volumes = json.loads(plane.kubectl("get", "pv", "-o", "json").stdout)["items"]
    assert {v["spec"]["storageClassName"] for v in volumes} == {"local-path"}
