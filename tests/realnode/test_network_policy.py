"""The chart's NetworkPolicies enforced on the real node (kube-router's policy controller, see
RealNodes.enforce_network_policies): dev (SQLite) and staging (PostgreSQL) installed as their
Applications render them, with the namespaces their peers name (nginx-ingress, monitoring,
kube-system, tracing) mapped to this test's own, and every flow tried from inside a pod: the ones
the policies name connect, the rest are refused. Each peer serves its ports from the catalog
image's python (staging's database is its real PostgreSQL, which its migration Job and its API
reach through the policies while they are enforced), and the host (always let through to its own
pods) reaches each one first, so a refusal is the policy's, not a dead peer. Prod renders the
same policies as staging, which a test asserts instead of installing it a third time."""

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
from tools.cluster.realnode import RealNodes, host, on_real_node

from . import database
from .environments import install, rendered_for
from .pods import get

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
    # dev keeps its data in SQLite: no egress rule names a database, so this one stays shut; on
    # staging the environment's own PostgreSQL (tests/realnode/database.py) takes its place.
    "postgresql": Peer("app", database.LABELS, (f"tcp:{database.PORT}",)),
    # Labelled as the database peer, but in a namespace the rule does not name.
    "postgresql-elsewhere": Peer("other", database.LABELS, (f"tcp:{database.PORT}",)),
    "helm-test": Peer("app", {}),  # labelled as the chart's test pod (the -test policy's selector)
}

ENVIRONMENTS = ("dev", "staging")
EVERY, NONE = frozenset(ENVIRONMENTS), frozenset[str]()

# Ports as numbers, or as the chart defines them: "http" (the API container's port, which the
# policies name) and "service" (the Service's port). The last field: where the flow is open.
FLOWS = [
    # ingress to the API: the ingress controller's namespace, Prometheus, the chart's test pod
    pytest.param("ingress-controller", "api", "tcp", "http", EVERY, id="ingress-controller-to-api"),
    pytest.param("prometheus", "api", "tcp", "http", EVERY, id="prometheus-to-api"),
    pytest.param("helm-test", "api", "tcp", "http", EVERY, id="helm-test-pod-to-api"),
    pytest.param("grafana", "api", "tcp", "http", NONE, id="other-pod-in-monitoring-to-api"),
    pytest.param("stranger", "api", "tcp", "http", NONE, id="other-namespace-to-api"),
    pytest.param("stranger", "api-service", "tcp", "service", NONE, id="other-namespace-to-api-service"),
    pytest.param("neighbour", "api", "tcp", "http", NONE, id="same-namespace-unlabelled-to-api"),
    # egress from the API: DNS and OTLP on their ports, the database where there is one, nothing else
    pytest.param("api", "dns", "udp", 53, EVERY, id="api-to-dns-udp"),
    pytest.param("api", "dns", "tcp", 53, EVERY, id="api-to-dns-tcp"),
    pytest.param("api", "otlp", "tcp", 4318, EVERY, id="api-to-otlp"),
    pytest.param("api", "dns", "tcp", PEER_PORT, NONE, id="api-to-dns-pod-other-port"),
    pytest.param("api", "otlp", "tcp", PEER_PORT, NONE, id="api-to-otlp-pod-other-port"),
    pytest.param("api", "stranger", "tcp", PEER_PORT, NONE, id="api-to-other-namespace"),
    pytest.param("api", "neighbour", "tcp", PEER_PORT, NONE, id="api-to-same-namespace"),
    pytest.param("api", "postgresql", "tcp", database.PORT, frozenset({"staging"}), id="api-to-postgresql"),
    pytest.param("api", "postgresql-elsewhere", "tcp", database.PORT, NONE, id="api-to-postgresql-elsewhere"),
    # the test pod: DNS and the API only
    pytest.param("helm-test", "stranger", "tcp", PEER_PORT, NONE, id="helm-test-pod-to-other-namespace"),
]


@dataclass
class Installed:
    environment: str
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


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def installed(
    request: pytest.FixtureRequest, enforced: RealNodes, real_namespace, node_image: str
) -> Iterator[Installed]:
    plane = enforced.plane
    assert plane is not None
    environment = request.param
    namespaces = {role: real_namespace() for role in (*CHART_NAMESPACES, "app", "other")}
    rendered = rendered_for(environment, node_image, namespaces["app"], networkPolicy=_peers_in(namespaces))
    own_database = "DATABASE_URL" not in rendered.one("ConfigMap")["data"]
    test_labels = rendered.one("NetworkPolicy", "catalog-test")["spec"]["podSelector"]["matchLabels"]
    peers = {
        name: _peer_pod(name, peer, namespaces, node_image, test_labels)
        for name, peer in PEERS.items()
        if not (name == "postgresql" and own_database)
    }
    plane.apply(list(peers.values()))
    # As Argo CD would sync it, with the policies enforced from the start: the migration Job and
    # the API reach staging's PostgreSQL only through them.
    app = install(
        plane, environment, node_image, namespaces["app"], lambda: request.getfixturevalue("postgresql_image"),
        networkPolicy=_peers_in(namespaces),
    )  # fmt: skip
    for name, pod in peers.items():
        plane.kubectl("wait", "-n", pod["metadata"]["namespace"], f"pod/{name}", "--for=condition=Ready",
                      "--timeout=120s")  # fmt: skip
    api_pods = app.pods()
    api = api_pods[0]
    addresses = {name: get(plane, "pod", name, pod["metadata"]["namespace"])["status"]["podIP"]
                 for name, pod in peers.items()}  # fmt: skip
    if own_database:
        addresses["postgresql"] = get(plane, "pod", "postgresql", namespaces["app"])["status"]["podIP"]
    addresses["api"] = api["status"]["podIP"]
    addresses["api-service"] = app.cluster_ip
    (http,) = [p["containerPort"] for c in api["spec"]["containers"] for p in c.get("ports", []) if p["name"] == "http"]
    ports = {"http": http, "service": app.rendered.one("Service")["spec"]["ports"][0]["port"]}
    # Every port answers the host, which kube-router always lets through to its own pods.
    for name in PEERS:
        for spec in PEERS[name].serves:
            proto, port = spec.split(":")
            assert _probe_from_host(addresses[name], int(port), proto) == "open", f"{name} does not serve {spec}"
    firewalled = [(pod["metadata"]["name"], namespaces["app"]) for pod in api_pods]
    _wait_firewalled(enforced, [*firewalled, ("helm-test", namespaces["app"])])
    yield Installed(environment, namespaces, addresses, ports, api["metadata"]["name"])
    # The next environment's pods need the node more than these do.
    plane.kubectl("delete", "namespace", *namespaces.values(), "--wait=false")


@pytest.mark.parametrize(("source", "target", "proto", "port", "open_in"), FLOWS)
def test_chart_network_policy_allows_exactly_the_flows_it_names(
    enforced: RealNodes,
    installed: Installed,
    source: str,
    target: str,
    proto: str,
    port: int | str,
    open_in: frozenset[str],
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

    assert answer == ("open" if installed.environment in open_in else REJECTED)


def test_prod_renders_the_policies_staging_enforces():
    """Why prod is not installed here: its NetworkPolicies are staging's, object for object."""
    image = f"registry.test/catalog@sha256:{'0' * 64}"

    def policies(environment: str) -> dict:
        rendered = rendered_for(environment, image, "catalog")
        return {d["metadata"]["name"]: d["spec"] for d in rendered.of_kind("NetworkPolicy")}

    assert policies("prod") == policies("staging")
    assert set(policies("staging")) == {"catalog", "catalog-migrate", "catalog-test"}


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
