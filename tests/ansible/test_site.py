"""`ansible-playbook site.yml -i inventories/ci` on the test control plane, driven by `molecule test`:
the scenario passes (converge, idempotence, verify), the first converge changes every role that
writes to the cluster and the second changes nothing, a check-mode run changes nothing, the
preflight refuses a foreign context without touching the cluster, and teardown removes what site.yml
created and nothing else."""

from __future__ import annotations

import pytest
import yaml

from tests.ansible import namespaces_role
from tools.cluster.toolbox import REPO_ROOT

pytestmark = pytest.mark.cluster

ROLES = sorted(p.name for p in (REPO_ROOT / "roles").iterdir() if p.is_dir())
# Every role but these must change something on a fresh cluster (kubernetes.core's integration
# targets assert the same pair: changed, then not changed). preflight only reads; kustomize_manifest
# writes local scratch (.tools/cache) that an earlier session may have left in place.
CHANGING_ROLES = sorted(set(ROLES) - {"preflight", "kustomize_manifest"})


def test_molecule_test_passes_prepare_converge_idempotence_verify(converged):
    run = converged.molecule
    imported = [
        entry["ansible.builtin.import_playbook"] for entry in yaml.safe_load((REPO_ROOT / "site.yml").read_text())
    ]
    site = [play["name"] for path in imported for play in yaml.safe_load((REPO_ROOT / path).read_text())]

    assert run.returncode == 0, run.explain()
    assert [step.plays for step in run.steps] == [["Prepare"], site, site, ["Verify"]], run.explain()
    verified = run.step("Verify")
    assert verified.total("changed") == 0, verified.explain()
    assert set(CHANGING_ROLES) <= verified.roles, verified.explain()


@pytest.mark.parametrize("role", CHANGING_ROLES)
def test_first_converge_changes_the_role(converged, role):
    first = converged.molecule.converges[0]

    assert role in first.roles, first.explain()
    assert first.changed_by_role[role] > 0, first.explain()


@pytest.mark.parametrize("role", ROLES)
def test_second_converge_changes_nothing_in_the_role(converged, role):
    assert len(converged.molecule.converges) == 2, converged.molecule.explain()
    second = converged.molecule.converges[1]

    assert role in second.roles, second.explain()
    assert second.changed_by_role[role] == 0, [label for label in second.changed if f": {role} : " in label]


def test_a_second_converge_changes_nothing(converged):
    assert len(converged.molecule.converges) == 2, converged.molecule.explain()
    again = converged.molecule.converges[1]

    assert again.returncode == 0, again.explain()
    assert again.total("changed") == 0, again.explain()
    assert again.total("ok") > 0, again.explain()


def test_check_mode_on_the_converged_platform_reports_no_changes(converged):
    checked = converged.playbook("site.yml", "--check")
    assert checked.returncode == 0, checked.explain()
    assert checked.total("changed") == 0, checked.explain()


@pytest.mark.parametrize("entry", namespaces_role.entries(), ids=lambda e: e["name"])
def test_each_namespace_carries_its_labels_and_policy(converged, entry):
    stored = converged.get_json("namespace", entry["name"])
    assert namespaces_role.labels(entry).items() <= stored["metadata"]["labels"].items()
    for document in namespaces_role.policy(entry):
        kind, name = document["kind"], document["metadata"]["name"]
        found = converged.get_json(kind, name, "-n", entry["name"])
        if kind == "ResourceQuota":
            assert found["spec"]["hard"] == document["spec"]["hard"]
        else:
            assert found["spec"] == {**found["spec"], **document["spec"]}


def _namespace_versions(platform) -> dict[str, str]:
    listed = platform.get_json("namespaces")["items"]
    return {n["metadata"]["name"]: n["metadata"]["resourceVersion"] for n in listed}


@pytest.mark.parametrize(
    ("current_context", "refusal"),
    [
        ("someone-elses-cluster", "refusing to act on kube context 'someone-elses-cluster'"),
        ("", "has no usable current context"),
    ],
    ids=["foreign-context", "no-current-context"],
)
def test_preflight_refuses_without_touching_the_cluster(
    platform, before_site, foreign_kubeconfig, current_context, refusal
):
    config = yaml.safe_load(foreign_kubeconfig.read_text())
    config["current-context"] = current_context
    foreign_kubeconfig.write_text(yaml.safe_dump(config))
    kubeconfig_bytes = foreign_kubeconfig.read_bytes()
    namespaces = _namespace_versions(platform)

    # The kubeconfig still reaches the test cluster: had the preflight let the run through,
    # site.yml would have changed it.
    refused = platform.playbook("site.yml", kubeconfig=foreign_kubeconfig)

    assert refused.returncode != 0, refused.explain()
    assert any(refusal in failure for failure in refused.failures), refused.explain()
    assert refused.total("changed") == 0, refused.explain()
    assert _namespace_versions(platform) == namespaces
    assert foreign_kubeconfig.read_bytes() == kubeconfig_bytes


def test_preflight_refuses_a_tool_below_its_minimum_without_touching_the_cluster(platform, before_site):
    namespaces = _namespace_versions(platform)

    refused = platform.playbook("site.yml", "-e", '{"preflight_min_versions": {"cosign": "99.0.0"}}')

    assert refused.returncode != 0, refused.explain()
    assert any("cosign 2." in f and "below the minimum 99.0.0" in f for f in refused.failures), refused.explain()
    assert refused.total("changed") == 0, refused.explain()
    assert _namespace_versions(platform) == namespaces


# What the platform may reserve on a laptop: Docker Desktop's default VM is half the host's CPUs
# and up to 8 GiB; the catalog environments need room beside the platform.
LAPTOP_REQUESTS = {"cpu": 3.0, "memory": 6 * 2**30}
WORKLOADS = ("deployments", "statefulsets", "daemonsets", "jobs", "cronjobs")
RUN_TO_COMPLETION = ("jobs", "cronjobs")
# Operator-made pods: their resources are in the custom resource the operator reads.
OPERATED = ("prometheuses.monitoring.coreos.com", "alertmanagers.monitoring.coreos.com")


def _quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


def _platform_pod_specs(platform) -> list[tuple[str, int, list[dict]]]:
    """(name, replicas, containers) of every workload in the platform namespaces."""
    namespaces = {e["name"] for e in namespaces_role.entries() if not e["name"].startswith("catalog-")}
    found = []
    for kind in (*WORKLOADS, *OPERATED):
        for item in platform.get_json(kind, "-A")["items"]:
            if item["metadata"]["namespace"] not in namespaces:
                continue
            spec = item["spec"]["jobTemplate"]["spec"] if kind == "cronjobs" else item["spec"]
            pod = spec["template"]["spec"] if "template" in spec else {"containers": [spec]}
            # A DaemonSet: one pod on Docker Desktop's one node. A Job holds nothing once it is done.
            replicas = 0 if kind in RUN_TO_COMPLETION else spec.get("replicas", 1)
            containers = pod.get("initContainers", []) + pod["containers"]
            found.append((f"{kind}/{item['metadata']['namespace']}/{item['metadata']['name']}", replicas, containers))
    return found


def test_every_platform_container_has_requests_and_limits_and_the_total_fits_a_laptop(converged):
    workloads = _platform_pod_specs(converged)
    assert workloads, "no platform workload found"
    missing = [
        f"{name} {container.get('name', '(spec)')}: {kind}.{resource}"
        for name, _, containers in workloads
        for container in containers
        for kind in ("requests", "limits")
        for resource in ("cpu", "memory")
        if resource not in container.get("resources", {}).get(kind, {})
    ]
    assert not missing, "\n".join(missing)
    totals = {
        kind: {
            resource: sum(
                replicas * _quantity(c["resources"][kind][resource]) for _, replicas, cs in workloads for c in cs
            )
            for resource in ("cpu", "memory")
        }
        for kind in ("requests", "limits")
    }
    print(
        f"\nplatform totals over {len(workloads)} workloads: requests {totals['requests']['cpu']:.2f} CPU /"
        f" {totals['requests']['memory'] / 2**30:.2f} GiB, limits {totals['limits']['cpu']:.2f} CPU /"
        f" {totals['limits']['memory'] / 2**30:.2f} GiB"
    )
    for resource, budget in LAPTOP_REQUESTS.items():
        assert totals["requests"][resource] <= budget, (resource, totals)


# Last: it takes the platform down (a test after it that needs the platform converges again).
def test_teardown_removes_what_site_created_and_nothing_else(converged, before_site):
    # Someone else's objects: a namespace and a ClusterRole site.yml did not create.
    theirs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "someone-elses"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "someone-elses-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        },
    ]
    converged.plane.apply(theirs)
    try:
        removed = converged.playbook("playbooks/teardown.yml")
        converged.converged = False
        assert removed.returncode == 0, removed.explain()

        after = converged.cluster_snapshot()
        expected = {kind: set(names) for kind, names in before_site.items()}
        expected["namespaces"].add("someone-elses")
        expected["clusterroles"].add("someone-elses-reader")
        assert after == expected
        assert converged.helm_releases() == []

        again = converged.playbook("playbooks/teardown.yml")
        assert again.returncode == 0, again.explain()
        assert again.total("changed") == 0, again.explain()
    finally:
        converged.kubectl("delete", "namespace", "someone-elses", "--wait=false", check=False)
        converged.kubectl("delete", "clusterrole", "someone-elses-reader", check=False)
