"""Each environment on the real control plane: server-side dry-run of every rendered object,
then `helm install` into a namespace made as the namespaces role makes catalog-<env> (its labels,
Pod Security `restricted` enforced, its policy file: quota, limits, default deny) until the pods
are Ready on kwok nodes; the ArgoCD objects are accepted by the real ArgoCD CRDs."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import yaml

from tests.ansible import namespaces_role
from tests.support import render

pytestmark = pytest.mark.cluster

# Not a key: kwok never starts the container, and the Secret lives only in a throwaway namespace.
FAKE_DATABASE_URL = "postgres://catalog:x@postgresql:5432/catalog"
FAKE_PEM = "-----BEGIN PUBLIC KEY-----\nnot-a-key\n-----END PUBLIC KEY-----\n"


@pytest.fixture
def catalog_namespace(control_plane, new_namespace):
    """A namespace as the namespaces role makes catalog-dev (restricted PSA, quota and limits
    counted, default deny), under a name of its own."""
    role_entry = namespaces_role.entry("catalog-dev")
    assert role_entry["pod_security"] == "restricted"
    namespace = new_namespace(**namespaces_role.labels(role_entry))
    control_plane.apply(namespaces_role.policy(role_entry, namespace))
    deadline = time.monotonic() + 30
    while (
        not json.loads(
            control_plane.kubectl("get", "resourcequota", "catalog-quota", "-n", namespace, "-o", "json").stdout
        )
        .get("status", {})
        .get("used")
    ):
        assert time.monotonic() < deadline, "the quota controller never counted usage"
        time.sleep(0.2)
    return namespace


def _prerequisites(control_plane, namespace: str, rendered: render.Rendered, created_volumes: list[str]) -> None:
    """What exists before a sync: the existingSecret (out of band) and, for a PVC, a volume for it."""
    for deployment in rendered.of_kind("Deployment"):
        env = deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
        secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
        for name in secrets - {d["metadata"]["name"] for d in rendered.of_kind("Secret")}:
            control_plane.apply([{
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                "stringData": {"DATABASE_URL": FAKE_DATABASE_URL, "jwt-public-key.pem": FAKE_PEM},
            }])  # fmt: skip
    default_class = next(
        item["metadata"]["name"]
        for item in json.loads(control_plane.kubectl("get", "storageclass", "-o", "json").stdout)["items"]
        if item["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    )
    for claim in rendered.of_kind("PersistentVolumeClaim"):
        name = f"catalog-test-{uuid.uuid4().hex[:8]}"
        control_plane.apply([{
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
                "accessModes": claim["spec"]["accessModes"], "storageClassName": default_class,
                "hostPath": {"path": f"/srv/{name}"},  # never mounted: kwok runs no kubelet
                "claimRef": {"namespace": namespace, "name": claim["metadata"]["name"]},
            },
        }])  # fmt: skip
        created_volumes.append(name)


@pytest.fixture
def volumes(control_plane):
    created: list[str] = []
    yield created
    for name in created:
        control_plane.kubectl("delete", "pv", name, "--wait=false", check=False)


def _in_namespace(documents, namespace: str) -> list[dict]:
    return [dict(d, metadata={**d["metadata"], "namespace": namespace}) for d in documents]


@pytest.mark.parametrize("environment", render.environments())
def test_server_side_dry_run_accepts_every_object(control_plane, catalog_namespace, applications, volumes, environment):
    rendered = render.render_application(applications[environment], catalog_namespace)
    _prerequisites(control_plane, catalog_namespace, rendered, volumes)
    # Pod admission looks the ServiceAccount up, and a dry run persists nothing: create those first.
    control_plane.apply(_in_namespace(rendered.of_kind("ServiceAccount"), catalog_namespace))

    dry_run = ["apply", "--server-side", "--dry-run=server", "--field-manager=catalog-tests"]
    result = control_plane.kubectl(*dry_run, "-n", catalog_namespace, "-f", "-", input=rendered.text, check=False)

    assert result.returncode == 0, result.stderr
    applied = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(applied) == len(rendered.documents), result.stdout
    assert "Warning" not in result.stderr, result.stderr  # PSA warn=restricted would speak here


def _helm(control_plane, *args: str, check: bool = True):
    return render.helm(*args, f"--kubeconfig={control_plane.kubeconfig}", check=check)


@pytest.mark.parametrize("environment", render.environments())
def test_helm_install_pods_ready_in_restricted_namespace(
    control_plane, catalog_namespace, applications, volumes, environment
):
    rendered = render.render_application(applications[environment], catalog_namespace)
    files = render.value_files(applications[environment])
    _prerequisites(control_plane, catalog_namespace, rendered, volumes)
    release = applications[environment]["spec"]["source"]["helm"]["releaseName"]

    install = _helm(
        control_plane, "install", release, render.CHART, "-n", catalog_namespace, *(f"--values={f}" for f in files),
        "--wait", "--timeout=120s", check=False,
    )  # fmt: skip

    assert install.returncode == 0, install.stdout + install.stderr
    deployment = rendered.one("Deployment")["metadata"]["name"]
    control_plane.kubectl(
        "wait", "-n", catalog_namespace, f"deployment/{deployment}", "--for=condition=Available", "--timeout=60s"
    )
    hpa = rendered.of_kind("HorizontalPodAutoscaler")
    want = hpa[0]["spec"]["minReplicas"] if hpa else rendered.one("Deployment")["spec"]["replicas"]
    pods = _wait_for_ready_pods(control_plane, catalog_namespace, want)
    pin = render.image_pin(environment)
    for pod in pods:
        assert pod["spec"]["nodeName"].startswith("kwok-node-")
        assert pod["spec"]["containers"][0]["image"] == f"{pin['repository']}@{pin['digest']}"
    hooks = list(yaml.safe_load_all(_helm(control_plane, "get", "hooks", release, "-n", catalog_namespace).stdout))
    test_pods = [
        h for h in hooks if h and h["kind"] == "Pod" and h["metadata"]["annotations"]["helm.sh/hook"] == "test"
    ]
    assert len(test_pods) == 1
    # The test pod would be admitted here as it is (restricted PSA, quota, limits).
    admitted = control_plane.kubectl(
        "create", "--dry-run=server", "-n", catalog_namespace, "-f", "-", input=json.dumps(test_pods[0]), check=False
    )
    assert admitted.returncode == 0, admitted.stderr
    if rendered.of_kind("Job"):  # the PostgreSQL migration hook ran to completion before the server
        events = control_plane.kubectl("get", "events", "-n", catalog_namespace, "-o", "json").stdout
        assert any(
            e["involvedObject"]["kind"] == "Job" and e["reason"] == "Completed" for e in json.loads(events)["items"]
        ), "no migration Job completed"


def _wait_for_ready_pods(control_plane, namespace: str, count: int, timeout: float = 90) -> list[dict]:
    """The server pods once `count` of them are Ready (the HPA raises a fresh Deployment to its floor)."""
    deadline = time.monotonic() + timeout
    while True:
        listed = control_plane.kubectl(
            "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=server", "-o", "json"
        )
        items = json.loads(listed.stdout)["items"]
        ready = [
            p for p in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))
        ]  # fmt: skip
        if len(ready) >= count:
            return ready
        assert time.monotonic() < deadline, f"{len(ready)}/{count} server pods Ready after {timeout:.0f}s"
        time.sleep(0.5)


def test_argocd_objects_accepted_by_argocd_crds(control_plane, applications):
    namespace = f"argocd-{uuid.uuid4().hex[:6]}"
    control_plane.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}])
    try:
        documents = _in_namespace(render.argocd_documents(), namespace)
        generated = _in_namespace(applications.values(), namespace)

        result = control_plane.kubectl(
            "apply", "--server-side", "--field-manager=catalog-tests", "-f", "-",
            input="\n---\n".join(json.dumps(d) for d in [*documents, *generated]), check=False,
        )  # fmt: skip

        assert result.returncode == 0, result.stderr
        kinds = {d["kind"] for d in documents}
        assert {"AppProject", "ApplicationSet"} <= kinds
        stored = json.loads(
            control_plane.kubectl("get", "applications.argoproj.io", "-n", namespace, "-o", "json").stdout
        )
        assert sorted(a["metadata"]["name"] for a in stored["items"]) == sorted(f"catalog-{e}" for e in applications)
        for app in stored["items"]:
            env = app["metadata"]["labels"]["catalog.platform/environment"]
            automated = app["spec"].get("syncPolicy", {}).get("automated")
            expected = {"dev": {"prune": True, "selfHeal": True}, "staging": {"prune": False, "selfHeal": False}}.get(
                env
            )
            assert automated == expected, (env, automated)
    finally:
        control_plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
