"""The test control plane behaves like a real cluster: scheduling onto kwok nodes, quota and
limit admission, Pod Security, the RBAC authorizer and CRD schemas are all enforced server-side."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.cluster

PAUSE = "registry.k8s.io/pause:3.10"  # never pulled: kwok nodes only pretend to run containers
RESTRICTED_SECURITY = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod(name: str, *, resources: dict | None = None, security: dict | None = None, **spec) -> dict:
    container = {"name": "app", "image": PAUSE, "resources": resources or {}}
    if security is not None:
        container["securityContext"] = security
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def create(control_plane, namespace: str, document: dict, *extra: str):
    """`kubectl create` through real authentication, admission and validation; returns the result."""
    return control_plane.kubectl("create", "-n", namespace, "-f", "-", *extra, input=json.dumps(document), check=False)


def test_deployment_becomes_available_on_kwok_nodes(control_plane, new_namespace):
    namespace = new_namespace()
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": PAUSE}]},
            },
        },
    }
    assert create(control_plane, namespace, deployment).returncode == 0

    control_plane.kubectl("wait", "-n", namespace, "deployment/web", "--for=condition=Available", "--timeout=60s")
    pods = json.loads(control_plane.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)
    assert len(pods["items"]) == 2
    for item in pods["items"]:
        ready = {c["type"]: c["status"] for c in item["status"]["conditions"]}
        assert item["status"]["phase"] == "Running"
        assert ready["Ready"] == "True"
        assert item["spec"]["nodeName"].startswith("kwok-node-")


@pytest.fixture
def limited_namespace(control_plane, new_namespace):
    """A namespace with a ResourceQuota (whose usage the quota controller has counted) and a LimitRange."""
    namespace = new_namespace()
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "quota", "namespace": namespace},
        "spec": {"hard": {"pods": "2", "requests.memory": "256Mi", "limits.memory": "512Mi"}},
    }
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "limits", "namespace": namespace},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "max": {"cpu": "500m", "memory": "384Mi"},
                    "default": {"cpu": "100m", "memory": "64Mi"},
                    "defaultRequest": {"cpu": "50m", "memory": "32Mi"},
                }
            ]
        },
    }
    control_plane.apply([quota, limits])
    deadline = time.monotonic() + 30
    while True:
        status = control_plane.kubectl("get", "resourcequota", "quota", "-n", namespace, "-o", "json")
        if json.loads(status.stdout).get("status", {}).get("used"):
            return namespace
        assert time.monotonic() < deadline, "the quota controller never counted usage"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("resources", "refusal"),
    [
        pytest.param({}, None, id="defaults-from-limitrange-admitted"),
        pytest.param(
            {"limits": {"cpu": "2"}},
            "maximum cpu usage per Container is 500m",
            id="cpu-above-limitrange-max",
        ),
        pytest.param(
            {"requests": {"memory": "300Mi"}, "limits": {"memory": "300Mi"}},
            "exceeded quota: quota",
            id="memory-request-above-quota",
        ),
    ],
)
def test_quota_and_limitrange_admission(control_plane, limited_namespace, resources, refusal):
    result = create(control_plane, limited_namespace, pod("p", resources=resources))

    if refusal is None:
        assert result.returncode == 0, result.stderr
        created = json.loads(control_plane.kubectl("get", "pod", "p", "-n", limited_namespace, "-o", "json").stdout)
        assert created["spec"]["containers"][0]["resources"]["limits"]["memory"] == "64Mi"
    else:
        assert result.returncode != 0
        assert "Forbidden" in result.stderr, result.stderr
        assert refusal in result.stderr, result.stderr


def test_quota_refuses_pod_count_beyond_hard_limit(control_plane, limited_namespace):
    results = [create(control_plane, limited_namespace, pod(f"p{i}")) for i in range(3)]

    assert [r.returncode == 0 for r in results] == [True, True, False]
    assert "exceeded quota: quota" in results[2].stderr
    assert "pods=2" in results[2].stderr


@pytest.mark.parametrize(
    ("spec", "security", "violation"),
    [
        pytest.param({}, RESTRICTED_SECURITY, None, id="restricted-compliant-admitted"),
        pytest.param({}, {"privileged": True}, "securityContext.privileged=true", id="privileged"),
        pytest.param({"hostNetwork": True}, RESTRICTED_SECURITY, "host namespaces", id="host-network"),
        pytest.param({}, None, "allowPrivilegeEscalation != false", id="no-security-context"),
        pytest.param(
            {},
            {**RESTRICTED_SECURITY, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}},
            "unrestricted capabilities",
            id="added-capability",
        ),
    ],
)
def test_pod_security_restricted_namespace(control_plane, new_namespace, spec, security, violation):
    namespace = new_namespace(**{"pod-security.kubernetes.io/enforce": "restricted"})

    result = create(control_plane, namespace, pod("p", security=security, **spec))

    if violation is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0
        assert 'violates PodSecurity "restricted:latest"' in result.stderr, result.stderr
        assert violation in result.stderr


def test_privileged_pod_admitted_without_pod_security_label(control_plane, new_namespace):
    namespace = new_namespace()

    result = create(control_plane, namespace, pod("p", security={"privileged": True}))

    assert result.returncode == 0, result.stderr


@pytest.fixture
def reader_account(control_plane, new_namespace):
    """ServiceAccount `reader` bound to a Role that may get/list/watch pods in its namespace only."""
    namespace = new_namespace()
    control_plane.apply([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "pod-reader", "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "reader-reads-pods", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    ])  # fmt: skip
    return namespace


@pytest.mark.parametrize(
    ("verb", "resource", "where", "allowed"),
    [
        pytest.param("list", "pods", "own", True, id="list-pods-in-own-namespace"),
        pytest.param("watch", "pods", "own", True, id="watch-pods-in-own-namespace"),
        pytest.param("delete", "pods", "own", False, id="delete-pods-denied"),
        pytest.param("get", "secrets", "own", False, id="get-secrets-denied"),
        pytest.param("list", "pods", "default", False, id="other-namespace-denied"),
        pytest.param("create", "workflows.argoproj.io", "own", False, id="crd-resource-denied"),
    ],
)
def test_rbac_can_i_for_service_account(control_plane, reader_account, verb, resource, where, allowed):
    namespace = reader_account if where == "own" else where
    subject = f"--as=system:serviceaccount:{reader_account}:reader"

    result = control_plane.kubectl("auth", "can-i", verb, resource, "-n", namespace, subject, check=False)

    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr
    assert result.returncode == (0 if allowed else 1)
