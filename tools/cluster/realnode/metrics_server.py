"""metrics-server for the real nodes: what `kubectl top` and every HorizontalPodAutoscaler read.

It runs as a pod on a real node, deployed from upstream's own manifests (`manifests/base` of the
module tools/metrics-server pins): ServiceAccount, RBAC, Service and the
v1beta1.metrics.k8s.io APIService, as on any cluster. A pod rather than a host process because
those objects are what a cluster depends on (the aggregator finds it through the Service, the
kubelets authorize it by its ServiceAccount), so they are proven here too. What differs from
upstream is only what this cluster needs, each said below; the image is made here from
`.tools/bin/metrics-server` (no registry holds one) and imported into every node."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import yaml

from tools.cluster import crds
from tools.cluster.toolbox import REPO_ROOT, run, tool

from . import pause
from .config import NODE_LABEL, label_selector, on_real_node

if TYPE_CHECKING:
    from tools.cluster.controlplane import ControlPlane

    from .nodes import RealNodes

MODULE = "sigs.k8s.io/metrics-server"
MODULE_DIR = REPO_ROOT / "tools" / "metrics-server"
REPOSITORY = "localhost/catalog-platform/metrics-server"
APISERVICE = "v1beta1.metrics.k8s.io"
NAMESPACE = "kube-system"
# Every pod's ServiceAccount volume holds the cluster CA, which signed each kubelet's serving
# certificate (see nodes.py): metrics-server verifies the kubelets, no --kubelet-insecure-tls.
CLUSTER_CA = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
ARGS = {
    # Nodes have no resolvable host name here; the InternalIP is the bridge address.
    "--kubelet-preferred-address-types": "InternalIP",
    "--kubelet-certificate-authority": CLUSTER_CA,
    # kwok's nodes have no kubelet to scrape: each scrape of one would only time out.
    "--node-selector": label_selector(NODE_LABEL),
}


def manifests(image: str, apiserver: tuple[str, int]) -> list[dict]:
    """Upstream's base manifests with this cluster's image, flags and node placement;
    `apiserver` is the address and port the apiserver serves on, on the nodes' bridge."""
    root = crds.module_dir(MODULE_DIR, MODULE)
    built = run([tool("kustomize"), "build", root / "manifests" / "base"]).stdout
    documents = [d for d in yaml.safe_load_all(built) if d]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # Imported into each node's containerd: nothing to pull.
    container.update(image=image, imagePullPolicy="Never")
    args = {flag: value for flag, _, value in (arg.partition("=") for arg in container["args"])}
    container["args"] = [f"{flag}={value}" if value else flag for flag, value in {**args, **ARGS}.items()]
    # The apiserver itself rather than the `kubernetes` Service: real-node clusters started side
    # by side on one host (parallel test runs) share kube-proxy's chain for default/kubernetes,
    # so 10.96.0.1 may lead to another cluster's apiserver.
    host, port = apiserver
    container["env"] = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": host},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(port)},
    ]
    deployment["spec"]["template"]["spec"] = on_real_node(pod)
    return documents


def install(plane: ControlPlane, nodes: RealNodes) -> str:
    """Import the image into every node and apply the manifests; return the image's name. The
    APIService turns Available once the pod is Ready (a first scrape stored): callers that need
    metrics wait for them."""
    archive = nodes.state_dir / "metrics-server.tar"
    image = pause.write_archive(tool("metrics-server"), archive, REPOSITORY)
    try:
        for node in nodes.nodes:
            nodes.ctr(node, "images", "import", str(archive))
    finally:
        archive.unlink()
    plane.apply(manifests(image, (plane.address, plane.ports["apiserver"])))
    return image


def available(plane: ControlPlane) -> bool:
    """Whether the aggregator reaches metrics-server (the APIService's Available condition)."""
    result = plane.kubectl("get", "apiservice", APISERVICE, "-o", "json", check=False)
    if result.returncode:
        return False
    conditions = json.loads(result.stdout)["status"].get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)
