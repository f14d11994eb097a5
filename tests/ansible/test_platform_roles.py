"""What playbooks/platform.yml created, read back from the API server: the registry under its one
name and the network policies of the registry, the ingress controller and Kyverno (whose policy
role runs in gitops.yml, after the key it checks against exists)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.cluster


def test_registry_objects_are_created(converged):
    deployment = converged.get_json("deployment", "registry", "-n", "registry")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"].startswith("docker.io/library/registry:2.")
    assert "@sha256:" in container["image"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    claim = converged.get_json("pvc", "registry-data", "-n", "registry")
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "registry-data"


def test_registry_service_is_a_load_balancer_on_5000_selecting_the_registry_pods(converged):
    service = converged.get_json("service", "registry", "-n", "registry")
    deployment = converged.get_json("deployment", "registry", "-n", "registry")

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
    policy = converged.get_json("networkpolicy", name, "-n", namespace)["spec"]
    opened_in = {p["port"] for rule in policy.get("ingress", []) for p in rule.get("ports", [])}
    opened_out = {p["port"] for rule in policy.get("egress", []) for p in rule.get("ports", [])}

    assert policy["podSelector"]["matchLabels"], "must select the component's pods, not the whole namespace"
    assert opened_in == ingress_ports
    if egress_ports is None:
        assert "Egress" not in policy["policyTypes"], "no egress rule: the default deny keeps egress closed"
    else:
        assert opened_out == egress_ports
        assert all(rule.get("ports") for rule in policy["egress"]), "an egress rule without ports opens everything"
