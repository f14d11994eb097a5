"""The catalog as the dev environment deploys it, run for real: the chart rendered as its ArgoCD
Application renders it, the image `make image` built pulled by digest from the local registry,
its SQLite claim bound by the cluster's provisioner on the real node, the migrate init container
run, and the startup, liveness and readiness probes executed by the kubelet until the Deployment
is Available."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support import render
from tools.cluster.realnode import NODE_LABEL, TAINT, RealNodes

from .pods import apply_as_argocd, get

pytestmark = pytest.mark.realnode


def dev_values(image: str) -> dict:
    """What differs from environments/dev on this cluster: the image pin (the local registry), the
    real node (selector and toleration), and no Ingress or monitoring objects: no controller here
    serves them."""
    repository, digest = image.split("@")
    return {
        "image": {"repository": repository, "digest": digest},
        "nodeSelector": NODE_LABEL,
        "tolerations": [{"key": TAINT["key"], "operator": "Exists", "effect": TAINT["effect"]}],
        "ingress": {"enabled": False},
        "monitoring": {name: {"enabled": False} for name in ("serviceMonitor", "prometheusRule", "dashboard")},
    }


def render_dev(image: str, namespace: str, **overrides) -> render.Rendered:
    """The dev Application's render on this cluster (dev_values), with `overrides` on top."""
    values = {**dev_values(image), **overrides}
    return render.render(*render.value_files(render.applications()["dev"]), values=values, namespace=namespace)


def test_dev_deployment_becomes_available_with_its_probes_run_by_the_kubelet(
    real_cluster: RealNodes, real_namespace, node_image: str
):
    plane = real_cluster.plane
    assert plane is not None
    namespace = real_namespace()
    rendered = render_dev(node_image, namespace)
    deployment = rendered.one("Deployment")
    name = deployment["metadata"]["name"]

    apply_as_argocd(plane, rendered.documents, namespace)
    plane.kubectl("wait", "-n", namespace, f"deployment/{name}", "--for=condition=Available", "--timeout=180s")

    selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    (pod,) = [p for p in _pods(plane, namespace, selector) if p["metadata"].get("deletionTimestamp") is None]
    spec = {c["name"]: c for c in pod["spec"]["containers"]}["catalog"]
    status = {c["name"]: c for c in pod["status"]["containerStatuses"]}["catalog"]
    (migrate,) = pod["status"]["initContainerStatuses"]
    assert pod["spec"]["nodeName"] == real_cluster.nodes[0].name
    assert status["imageID"].endswith(node_image.split("@")[1]), status["imageID"]
    assert migrate["state"]["terminated"]["exitCode"] == 0
    assert {"startupProbe", "livenessProbe", "readinessProbe"} <= spec.keys()
    assert (status["ready"], status["started"], status["restartCount"]) == (True, True, 0)
    port = spec["ports"][0]["containerPort"]
    readyz = httpx.get(f"http://{pod['status']['podIP']}:{port}/readyz", timeout=5)
    assert readyz.status_code == 200
    assert readyz.json()["checks"] == {"database": "ok"}
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "data"]
    claim = get(plane, "pvc", volume["persistentVolumeClaim"]["claimName"], namespace)
    directory = Path(get(plane, "pv", claim["spec"]["volumeName"], "")["spec"]["hostPath"]["path"])
    assert (claim["spec"]["storageClassName"], claim["status"]["phase"]) == ("local-path", "Bound")
    assert directory.parent == real_cluster.nodes[0].directory / "volumes"
    assert (directory / "catalog.sqlite3").stat().st_size > 0  # the migrated database, on the node
    cluster_ip = get(plane, "service", rendered.one("Service")["metadata"]["name"], namespace)["spec"]["clusterIP"]
    assert httpx.get(f"http://{cluster_ip}/livez", timeout=5).status_code == 200


def _pods(plane, namespace: str, selector: str) -> list[dict]:
    return json.loads(plane.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
