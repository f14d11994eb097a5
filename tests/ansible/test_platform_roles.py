"""What playbooks/platform.yml created, read back from the API server: the registry under its one
name, the ingress controller's and Kyverno's network policies, and the ImageValidatingPolicy that
refuses unsigned catalog images in staging and prod."""

from __future__ import annotations

import base64
import fnmatch
import json

import pytest

pytestmark = pytest.mark.cluster

PLATFORM_NAMESPACES = ("registry", "nginx-ingress", "kyverno")
WORKLOAD_KINDS = "deployments,statefulsets,daemonsets,jobs,cronjobs"


def get_json(platform, *args: str) -> dict:
    return json.loads(platform.kubectl("get", *args, "-o", "json").stdout)


def pod_specs(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


@pytest.mark.parametrize("namespace", PLATFORM_NAMESPACES)
def test_platform_every_container_has_requests_and_limits(converged, namespace):
    workloads = get_json(converged, WORKLOAD_KINDS, "-n", namespace)["items"]
    lacking = [
        f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"
        for workload in workloads
        for container in pod_specs(workload).get("initContainers", []) + pod_specs(workload)["containers"]
        for field in ("requests", "limits")
        for resource in ("cpu", "memory")
        if resource not in container.get("resources", {}).get(field, {})
    ]
    assert not lacking, f"containers in {namespace} without cpu/memory requests and limits: {lacking}"


def test_registry_objects_are_created(converged):
    deployment = get_json(converged, "deployment", "registry", "-n", "registry")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].startswith("docker.io/library/registry:2.")
    assert "@sha256:" in container["image"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    claim = get_json(converged, "pvc", "registry-data", "-n", "registry")
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "registry-data"


def test_registry_service_is_a_load_balancer_on_5000_selecting_the_registry_pods(converged):
    service = get_json(converged, "service", "registry", "-n", "registry")
    deployment = get_json(converged, "deployment", "registry", "-n", "registry")

    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(5000, "http")]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {
        p["name"]: p["containerPort"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert container_ports["http"] == 5000


@pytest.mark.parametrize(
    ("namespace", "name", "ingress_ports", "egress_ports"),
    [
        pytest.param("registry", "registry-allow-http", {5000}, None, id="registry-port-only-no-egress"),
        pytest.param(
            "nginx-ingress", "nginx-ingress-controller", {80, 443, 9113}, {53, 443, 6443, 8000, 3000}, id="ingress"
        ),
        pytest.param("kyverno", "kyverno-allow", {9443, 8000}, {53, 443, 6443, 5000}, id="kyverno"),
    ],
)
def test_platform_network_policy_opens_exactly_the_needed_ports(
    converged, namespace, name, ingress_ports, egress_ports
):
    policy = get_json(converged, "networkpolicy", name, "-n", namespace)["spec"]
    opened_in = {p["port"] for rule in policy.get("ingress", []) for p in rule.get("ports", [])}
    opened_out = {p["port"] for rule in policy.get("egress", []) for p in rule.get("ports", [])}

    assert policy["podSelector"]["matchLabels"], "must select the component's pods, not the whole namespace"
    assert opened_in == ingress_ports
    if egress_ports is None:
        assert "Egress" not in policy["policyTypes"], "no egress rule: the default deny keeps egress closed"
    else:
        assert opened_out == egress_ports
        assert all(rule.get("ports") for rule in policy["egress"]), "an egress rule without ports opens everything"


def ivpol(converged) -> dict:
    return get_json(converged, "imagevalidatingpolicies.policies.kyverno.io", "catalog-images-signed")["spec"]


def test_policy_matches_pods_in_staging_and_prod_only(converged):
    spec = ivpol(converged)
    (selector,) = spec["matchConstraints"]["namespaceSelector"]["matchExpressions"]

    assert (selector["key"], selector["operator"]) == ("kubernetes.io/metadata.name", "In")
    assert sorted(selector["values"]) == ["catalog-prod", "catalog-staging"]
    assert spec["validationActions"] == ["Deny"]
    assert spec["failurePolicy"] == "Fail"
    assert {r["resources"][0] for r in spec["matchConstraints"]["resourceRules"]} == {"pods"}


def test_policy_key_is_the_platform_cosign_public_key_without_tlog(converged):
    secret = get_json(converged, "secret", "cosign-key", "-n", "argo")
    published = base64.b64decode(secret["data"]["cosign.pub"]).decode()
    (attestor,) = ivpol(converged)["attestors"]

    assert attestor["cosign"]["key"]["data"].strip() == published.strip()
    assert "BEGIN PUBLIC KEY" in published
    assert attestor["cosign"]["ctlog"] == {"insecureIgnoreTlog": True, "insecureIgnoreSCT": True}
    assert f"attestors.{attestor['name']}" in ivpol(converged)["validations"][0]["expression"]


@pytest.mark.parametrize(
    ("image", "checked"),
    [
        pytest.param("host.docker.internal:5000/catalog@sha256:" + "a" * 64, True, id="catalog-by-digest"),
        pytest.param("host.docker.internal:5000/catalog:1.2.0", True, id="catalog-by-tag"),
        pytest.param("localhost:5000/catalog:1.2.0", False, id="other-registry-name"),
        pytest.param("docker.io/library/postgres:17", False, id="third-party-image"),
        pytest.param("host.docker.internal:5000/tools:1", False, id="other-repository-same-registry"),
    ],
)
def test_policy_image_glob_selects_only_catalog_images(converged, image, checked):
    (reference,) = ivpol(converged)["matchImageReferences"]

    assert fnmatch.fnmatchcase(image, reference["glob"]) is checked
