"""The chart's NetworkPolicies enforced on the real node (kube-router's policy controller, see
RealNodes.enforce_network_policies): the dev render installed as in test_workloads, with the
namespaces its peers name (nginx-ingress, monitoring, kube-system, tracing) mapped to this test's
own, and every flow tried from inside a pod: the ones the policies name connect, the rest are
refused. Each peer serves its ports from the catalog image's python, and the host (always let
through to its own pods) reaches each one first, so a refusal is the policy's, not a dead peer."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from tests.support import render
from tools.cluster.realnode import RealNodes, host, label_selector, on_real_node

from .environments import rendered_for
from .pods import get
from .sync import sync

pytestmark = pytest.mark.realnode

# Serves each `tcp:PORT`/`udp:PORT` argument: connections are accepted, datagrams echoed "open".
SERVER = """
import socket, sys, threading
def tcp(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("", port)); s.listen()
    while True:
        s.accept()[0].close()
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", port))
    while True:
        _, peer = s.recvfrom(64); s.sendto(b"open", peer)
for spec in sys.argv[1:]:
    proto, port = spec.split(":")
    threading.Thread(target={"tcp": tcp, "udp": udp}[proto], args=(int(port),)).start()
"""
# "open" when a TCP handshake completes (the API too: it waits for a request) or a datagram is
# answered; else why not (kube-router REJECTs: "Connection refused"). The kernel rate-limits the
# ICMP errors a REJECT sends; the SYN retransmissions within 10 s give it more than one chance.
CLIENT = """
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
s.settimeout(10)
try:
    s.connect((host, port))
    if proto == "udp":
        s.send(b"?")
        s.recv(64)
    print("open")
except OSError as error:
    print(f"refused: {error!r}")
"""
# What kube-router's REJECT (icmp-port-unreachable) looks like to a TCP client.
REJECTED = "refused: ConnectionRefusedError(111, 'Connection refused')"
PEER_PORT = 8080


@dataclass(frozen=True)
class Peer:
    """A pod of this test: namespace role, labels, and what it serves."""

    namespace: str  # a key of CHART_NAMESPACES, or "app"/"other"
    labels: dict[str, str]
    serves: tuple[str, ...] = (f"tcp:{PEER_PORT}",)


# The namespaces the chart's default peers name, each replaced by one of the test's.
CHART_NAMESPACES = ("nginx-ingress", "monitoring", "kube-system", "tracing")
PEERS = {
    "ingress-controller": Peer("nginx-ingress", {"app": "ingress-nginx"}),
    "prometheus": Peer("monitoring", {"app.kubernetes.io/name": "prometheus"}),
    "grafana": Peer("monitoring", {"app.kubernetes.io/name": "grafana"}),
    "dns": Peer("kube-system", {"k8s-app": "kube-dns"}, ("udp:53", "tcp:53", f"tcp:{PEER_PORT}")),
    "otlp": Peer("tracing", {"app": "jaeger-collector"}, ("tcp:4318", f"tcp:{PEER_PORT}")),
    "stranger": Peer("other", {"app": "stranger"}),
    "neighbour": Peer("app", {"app": "neighbour"}),
    # dev keeps its data in SQLite: no egress rule names a database, so this one stays shut.
    "postgresql": Peer("app", {"app.kubernetes.io/name": "postgresql"}, ("tcp:5432",)),
    "helm-test": Peer("app", {}),  # labelled as the chart's test pod (the -test policy's selector)
}

# Ports as numbers, or as the chart defines them: "http" (the API container's port, which the
# policies name) and "service" (the Service's port).
FLOWS = [
    # ingress to the API: the ingress controller's namespace, Prometheus, the chart's test pod
    pytest.param("ingress-controller", "api", "tcp", "http", True, id="ingress-controller-to-api"),
    pytest.param("prometheus", "api", "tcp", "http", True, id="prometheus-to-api"),
    pytest.param("helm-test", "api", "tcp", "http", True, id="helm-test-pod-to-api"),
    pytest.param("grafana", "api", "tcp", "http", False, id="other-pod-in-monitoring-to-api"),
    pytest.param("stranger", "api", "tcp", "http", False, id="other-namespace-to-api"),
    pytest.param("stranger", "api-service", "tcp", "service", False, id="other-namespace-to-api-service"),
    pytest.param("neighbour", "api", "tcp", "http", False, id="same-namespace-unlabelled-to-api"),
    # egress from the API: DNS and OTLP on their ports, nothing else
    pytest.param("api", "dns", "udp", 53, True, id="api-to-dns-udp"),
    pytest.param("api", "dns", "tcp", 53, True, id="api-to-dns-tcp"),
    pytest.param("api", "otlp", "tcp", 4318, True, id="api-to-otlp"),
    pytest.param("api", "dns", "tcp", PEER_PORT, False, id="api-to-dns-pod-other-port"),
    pytest.param("api", "otlp", "tcp", PEER_PORT, False, id="api-to-otlp-pod-other-port"),
    pytest.param("api", "stranger", "tcp", PEER_PORT, False, id="api-to-other-namespace"),
    pytest.param("api", "neighbour", "tcp", PEER_PORT, False, id="api-to-same-namespace"),
    pytest.param("api", "postgresql", "tcp", 5432, False, id="api-to-postgresql-on-sqlite"),
    # the test pod: DNS and the API only
    pytest.param("helm-test", "stranger", "tcp", PEER_PORT, False, id="helm-test-pod-to-other-namespace"),
]


@dataclass
class Installed:
    namespaces: dict[str, str]  # role -> namespace
    addresses: dict[str, str]  # pod or "api-service" -> IP
    ports: dict[str, int]  # "http", "service"
    api_pod: str


@pytest.fixture(scope="module")
def enforced(real_cluster: RealNodes) -> Iterator[RealNodes]:
    real_cluster.enforce_network_policies()
    try:
        yield real_cluster
    finally:
        real_cluster.stop_enforcing()
    assert [c for prefix in host.ENFORCER_CHAIN_PREFIXES for c in host.chains_named(prefix)] == []
    assert host.ipsets_named(host.ENFORCER_IPSET_PREFIXES) == []


@pytest.fixture(scope="module")
def installed(enforced: RealNodes, real_namespace, node_image: str) -> Installed:
    plane = enforced.plane
    assert plane is not None
    namespaces = {role: real_namespace() for role in (*CHART_NAMESPACES, "app", "other")}
    rendered = rendered_for("dev", node_image, namespaces["app"], networkPolicy=_peers_in(namespaces))
    test_labels = rendered.one("NetworkPolicy", "catalog-test")["spec"]["podSelector"]["matchLabels"]
    peers = {name: _peer_pod(name, peer, namespaces, node_image, test_labels) for name, peer in PEERS.items()}
    plane.apply(list(peers.values()))
    sync(plane, rendered.documents, namespaces["app"])
    for name, pod in peers.items():
        plane.kubectl("wait", "-n", pod["metadata"]["namespace"], f"pod/{name}", "--for=condition=Ready",
                      "--timeout=120s")  # fmt: skip
    selector = label_selector(rendered.one("Deployment")["spec"]["selector"]["matchLabels"])
    (api,) = json.loads(plane.kubectl("get", "pods", "-n", namespaces["app"], "-l", selector, "-o", "json").stdout)[
        "items"
    ]
    addresses = {name: get(plane, "pod", name, pod["metadata"]["namespace"])["status"]["podIP"]
                 for name, pod in peers.items()}  # fmt: skip
    addresses["api"] = api["status"]["podIP"]
    service = get(plane, "service", rendered.one("Service")["metadata"]["name"], namespaces["app"])
    addresses["api-service"] = service["spec"]["clusterIP"]
    (http,) = [p["containerPort"] for c in api["spec"]["containers"] for p in c.get("ports", []) if p["name"] == "http"]
    ports = {"http": http, "service": service["spec"]["ports"][0]["port"]}
    # Every port answers the host, which kube-router always lets through to its own pods.
    for name in peers:
        for spec in PEERS[name].serves:
            proto, port = spec.split(":")
            assert _probe_from_host(addresses[name], int(port), proto) == "open", f"{name} does not serve {spec}"
    _wait_firewalled(enforced, [(api["metadata"]["name"], namespaces["app"]), ("helm-test", namespaces["app"])])
    return Installed(namespaces, addresses, ports, api["metadata"]["name"])


@pytest.mark.parametrize(("source", "target", "proto", "port", "allowed"), FLOWS)
def test_chart_network_policy_allows_exactly_the_flows_it_names(
    enforced: RealNodes, installed: Installed, source: str, target: str, proto: str, port: int | str, allowed: bool
):
    plane = enforced.plane
    assert plane is not None
    if source == "api":
        pod, namespace, container = installed.api_pod, installed.namespaces["app"], "catalog"
    else:
        pod, namespace, container = source, installed.namespaces[PEERS[source].namespace], "peer"
    answer = plane.kubectl(
        "exec", "-n", namespace, pod, "-c", container, "--",
        "python3", "-c", CLIENT, installed.addresses[target], str(installed.ports.get(str(port), port)), proto,
    ).stdout.strip()  # fmt: skip

    assert answer == ("open" if allowed else REJECTED)


def _peers_in(namespaces: dict[str, str]) -> dict:
    """The chart's default networkPolicy values with each namespace it names replaced by the
    test's namespace for that role (selectors on pod labels kept as they are)."""
    defaults = yaml.safe_load(render.CHART.joinpath("values.yaml").read_text())["networkPolicy"]
    text = json.dumps(defaults)
    for name in CHART_NAMESPACES:
        selector = f'"kubernetes.io/metadata.name": "{name}"'
        assert selector in text, f"the chart no longer names {name}"
        text = text.replace(selector, f'"kubernetes.io/metadata.name": "{namespaces[name]}"')
    return json.loads(text)


def _peer_pod(name: str, peer: Peer, namespaces: dict[str, str], image: str, test_labels: dict) -> dict:
    labels = test_labels if name == "helm-test" else peer.labels
    first_tcp = next(int(s.split(":")[1]) for s in peer.serves if s.startswith("tcp:"))
    container = {
        "name": "peer",
        "image": image,
        "command": ["python3", "-c", SERVER, *peer.serves],
        "readinessProbe": {"tcpSocket": {"port": first_tcp}, "periodSeconds": 1},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    spec = {
        "containers": [container],
        "terminationGracePeriodSeconds": 1,
        # DNS's port 53 without root or NET_BIND_SERVICE (a namespaced, "safe" sysctl)
        "securityContext": {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespaces[peer.namespace], "labels": labels},
        "spec": on_real_node(spec),
    }


def _probe_from_host(address: str, port: int, proto: str) -> str:
    result = subprocess.run([sys.executable, "-c", CLIENT, address, str(port), proto], capture_output=True, text=True,
                            check=True, timeout=30)  # fmt: skip
    return result.stdout.strip()


def _wait_firewalled(nodes: RealNodes, pods: list[tuple[str, str]], timeout: float = 60) -> None:
    """Until kube-router has a firewall chain for each (pod, namespace) the policies select: its
    sync after the last pod started has then seen every peer."""
    deadline = time.monotonic() + timeout
    while True:
        rules = host.sh("iptables-save", "-t", "filter").stdout
        missing = [p for p in pods if f"POD name:{p[0]} namespace: {p[1]}" not in rules]
        if not missing:
            return
        assert time.monotonic() < deadline, f"kube-router has not firewalled {missing} after {timeout:.0f}s"
        time.sleep(0.5)
