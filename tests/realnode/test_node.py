"""The real node as a user meets it: Ready with the pinned kubelet and containerd, a pod on the
bridge answering the host, `kubectl logs/exec/port-forward` through the apiserver to the kubelet,
a Service's ClusterIP through kube-proxy, and the apiserver reachable from pods."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import time
from dataclasses import dataclass

import httpx
import pytest

from tools.cluster.realnode import TAINT, RealNodes
from tools.cluster.toolbox import pinned_version, tool

from .pods import HTTP_PORT, SERVICE_PORT, get, http_server, service, wait_ready, wait_routed

pytestmark = pytest.mark.realnode


@dataclass(frozen=True)
class Web:
    namespace: str
    pod: str
    pod_ip: str
    cluster_ip: str


@pytest.fixture(scope="module")
def web(real_cluster: RealNodes, real_namespace, node_image: str) -> Web:
    """One HTTP server pod and its Service, in a namespace of their own."""
    plane = real_cluster.plane
    assert plane is not None
    namespace = real_namespace()
    plane.apply([http_server("web", namespace, node_image), service("web", namespace)])
    pod = wait_ready(plane, "web", namespace)
    cluster_ip = get(plane, "service", "web", namespace)["spec"]["clusterIP"]
    return Web(namespace, "web", pod["status"]["podIP"], cluster_ip)


def test_node_is_ready_with_the_pinned_kubelet_and_containerd(real_cluster: RealNodes):
    plane, layout = real_cluster.plane, real_cluster.nodes[0]
    assert plane is not None

    node = get(plane, "node", layout.name, "")

    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == pinned_version("kubernetes", "k8s.io/kubernetes")
    assert info["containerRuntimeVersion"] == "containerd://" + pinned_version(
        "containerd", "github.com/containerd/containerd/v2"
    ).removeprefix("v")
    assert {"type": "InternalIP", "address": layout.gateway} in node["status"]["addresses"]
    assert {k: node["spec"]["taints"][0][k] for k in ("key", "value", "effect")} == TAINT
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True", ready


def test_pod_on_the_bridge_answers_http_from_the_host(real_cluster: RealNodes, web: Web):
    subnet = ipaddress.ip_network(real_cluster.nodes[0].subnet)

    response = httpx.get(f"http://{web.pod_ip}:{HTTP_PORT}/", timeout=5)

    assert ipaddress.ip_address(web.pod_ip) in subnet
    assert response.status_code == 200


def test_cluster_ip_answers_from_the_host(web: Web):
    wait_routed(web.cluster_ip, SERVICE_PORT, timeout=15)
    response = httpx.get(f"http://{web.cluster_ip}/", timeout=5)

    assert response.status_code == 200


def test_kubectl_logs_show_the_pods_requests(real_cluster: RealNodes, web: Web):
    assert real_cluster.plane is not None
    marker = f"/logged-{time.monotonic_ns()}"
    httpx.get(f"http://{web.pod_ip}:{HTTP_PORT}{marker}", timeout=5)

    expected = f'"GET {marker} HTTP/1.1" 404'
    deadline = time.monotonic() + 10  # containerd copies the container's stderr to the log file
    while expected not in (logs := real_cluster.plane.kubectl("logs", web.pod, "-n", web.namespace).stdout):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)

    assert expected in logs


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(["python3", "-c", "print(6 * 7)"], "42", id="output"),
        pytest.param(["id", "-u"], "10001", id="image-user"),
    ],
)
def test_kubectl_exec_runs_in_the_container(real_cluster: RealNodes, web: Web, command, expected):
    assert real_cluster.plane is not None

    result = real_cluster.plane.kubectl("exec", web.pod, "-n", web.namespace, "--", *command)

    assert result.stdout.strip() == expected


def test_kubectl_port_forward_reaches_the_pod(real_cluster: RealNodes, web: Web):
    assert real_cluster.plane is not None
    forward = subprocess.Popen(
        [tool("kubectl"), f"--kubeconfig={real_cluster.plane.kubeconfig}", "port-forward", "-n", web.namespace,
         f"pod/{web.pod}", f":{HTTP_PORT}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+) ->", line)
        assert match, f"port-forward said {line!r}"

        response = httpx.get(f"http://127.0.0.1:{match.group(1)}/", timeout=5)

        assert response.status_code == 200
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_pods_reach_the_apiserver_through_the_kubernetes_service(real_cluster: RealNodes, web: Web):
    """The default endpoint reconciler publishes the bridge IP; kube-proxy routes 10.96.0.1 there."""
    assert real_cluster.plane is not None
    # No cluster DNS: the Service's ClusterIP, which the apiserver's certificate names.
    probe = (
        "import json, ssl, urllib.request; "
        "context = ssl.create_default_context(cafile='/var/run/secrets/kubernetes.io/serviceaccount/ca.crt'); "
        "print(json.load(urllib.request.urlopen('https://10.96.0.1/version', context=context))['gitVersion'])"
    )
    endpoints = get(real_cluster.plane, "endpointslice", "kubernetes", "default")["endpoints"]

    result = real_cluster.plane.kubectl(
        "exec", web.pod, "-n", web.namespace, "--",
        "python3", "-c", probe,
    )  # fmt: skip

    assert [e["addresses"] for e in endpoints] == [[real_cluster.nodes[0].gateway]]
    assert result.stdout.strip() == pinned_version("kubernetes", "k8s.io/kubernetes")


def dropped_packets(chain: str) -> int:
    """Packets the egress guard's DROP rules have dropped so far."""
    listing = subprocess.run(["iptables", "-L", chain, "-v", "-x", "-n"], capture_output=True, text=True, check=True)
    return sum(int(line.split()[0]) for line in listing.stdout.splitlines()[2:] if " DROP " in f" {line} ")


def test_pod_traffic_for_outside_the_machine_is_dropped_by_the_host(real_cluster: RealNodes, web: Web):
    """Pods have a default route through the host; the egress guard must drop what they send out."""
    assert real_cluster.plane is not None
    routes = json.loads(subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True, text=True).stdout)
    outside = routes[0]["gateway"] if routes else "192.0.2.1"
    before = dropped_packets(real_cluster.chain)
    attempt = (
        "import socket\n"
        f"try: socket.create_connection(('{outside}', 80), timeout=2); print('connected')\n"
        "except OSError as error: print('failed', type(error).__name__)"
    )

    result = real_cluster.plane.kubectl("exec", web.pod, "-n", web.namespace, "--", "python3", "-c", attempt)

    assert result.stdout.startswith("failed"), result.stdout
    assert dropped_packets(real_cluster.chain) > before
