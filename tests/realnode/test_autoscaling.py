"""The chart's HorizontalPodAutoscaler run for real: metrics-server (part of every real-node
cluster) reads the pods' CPU from the kubelet, the HPA controller scales the Deployment up under a
bounded load from the host and back down to minReplicas once the load stops. Without a metrics
API an HPA never scales (it reports FailedGetResourceMetric); this is the proof that it does here.

The dev environment is rendered with autoscaling on, as staging and prod run it, with the floor
at one replica (dev's SQLite allows no more at rest), a CPU target the load reaches on two shared
cores, and a scale-down window of seconds instead of five minutes. Each replica has its own
SQLite in an emptyDir; the load reads /livez, which needs no database."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.process_tier import wait_until
from tools.cluster.realnode import RealNodes, label_selector, metrics_server

from .environments import rendered_for
from .load import Load
from .pods import get
from .sync import sync

pytestmark = pytest.mark.realnode

MIN_REPLICAS, MAX_REPLICAS = 1, 3
AUTOSCALING = {
    "enabled": True,
    "minReplicas": MIN_REPLICAS,
    "maxReplicas": MAX_REPLICAS,
    # Of the 100m dev requests: 20m, a few hundred requests a second; an idle pod stays below it.
    "targetCPUUtilizationPercentage": 20,
    "behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 5}]},
        "scaleDown": {
            "stabilizationWindowSeconds": 15,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}],
        },
    },
}
UP_REASON = "cpu resource utilization (percentage of request) above target"
DOWN_REASON = "All metrics below target"


def _json(plane, *args: str) -> dict:
    return json.loads(plane.kubectl(*args, "-o", "json").stdout)


def _pod_cpu(plane, namespace: str, selector: str) -> dict[str, str]:
    """Pod name -> the catalog container's CPU usage, as the metrics API serves it."""
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods?labelSelector={selector}"
    result = plane.kubectl("get", "--raw", path, check=False)
    if result.returncode:
        return {}
    return {
        item["metadata"]["name"]: {c["name"]: c["usage"]["cpu"] for c in item["containers"]}.get("catalog", "")
        for item in json.loads(result.stdout)["items"]
    }


def _cores(quantity: str) -> float:
    """A CPU quantity as the metrics API writes it (e.g. 2517311n) in cores."""
    scale = {"n": 1e-9, "u": 1e-6, "m": 1e-3}.get(quantity[-1:], 1.0)
    return float(quantity.rstrip("num")) * scale


def _condition(hpa: dict, kind: str) -> dict:
    return next((c for c in hpa["status"].get("conditions", []) if c["type"] == kind), {})


def _active(hpa: dict) -> dict | None:
    """`hpa` once its controller reads a valid metric for it."""
    return hpa if _condition(hpa, "ScalingActive").get("status") == "True" else None


def _at_floor(hpa: dict) -> dict | None:
    status = hpa["status"]
    return hpa if (status.get("currentReplicas"), status.get("desiredReplicas")) == (MIN_REPLICAS,) * 2 else None


def _rescales(plane, namespace: str, name: str) -> list[str]:
    """The HPA's SuccessfulRescale messages, oldest first ("New size: N; reason: ...")."""
    fields = f"involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name},reason=SuccessfulRescale"
    events = _json(plane, "get", "events", "-n", namespace, "--field-selector", fields)["items"]
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [e["message"] for e in events]


def test_hpa_scales_the_deployment_up_under_load_and_back_down_after_it(
    real_cluster: RealNodes, real_namespace, node_image: str
):
    plane = real_cluster.plane
    assert plane is not None
    namespace = real_namespace()
    # An emptyDir per replica: added replicas must not share (or wait for) the one SQLite claim.
    rendered = rendered_for("dev", node_image, namespace, autoscaling=AUTOSCALING, persistence={"enabled": False})
    deployment = rendered.one("Deployment")["metadata"]["name"]
    hpa_name = rendered.one("HorizontalPodAutoscaler")["metadata"]["name"]
    selector = label_selector(rendered.one("Deployment")["spec"]["selector"]["matchLabels"])
    sync(plane, rendered.documents, namespace)
    began = time.monotonic()

    # The metrics API serves the pod's CPU (metrics-server scraped the kubelet), and kubectl top shows it.
    wait_until(lambda: metrics_server.available(plane), 180, "metrics-server's APIService Available", interval=1.0)
    usage = wait_until(lambda: _pod_cpu(plane, namespace, selector), 180, "pod metrics", interval=1.0)
    first_metrics = time.monotonic() - began
    (pod_name,) = usage
    assert _cores(usage[pod_name]) > 0, usage
    top = plane.kubectl("top", "pod", "-n", namespace, "-l", selector, "--no-headers").stdout.split()
    assert top[0] == pod_name, top
    assert top[1].endswith("m"), top

    # The HPA reads them, and at rest wants the floor.
    hpa = wait_until(lambda: _active(get(plane, "hpa", hpa_name, namespace)), 120, "HPA ScalingActive", interval=1.0)
    assert _condition(hpa, "ScalingActive")["reason"] == "ValidMetricFound"
    assert hpa["status"]["desiredReplicas"] == MIN_REPLICAS, hpa["status"]

    # The pod's own address rather than the Service's ClusterIP: kube-proxy's rules are host-wide,
    # and another real-node cluster on this host (a parallel run) may rewrite or flush them.
    pod = get(plane, "pod", pod_name, namespace)
    port = {c["name"]: c for c in pod["spec"]["containers"]}["catalog"]["ports"][0]["containerPort"]
    load_began = time.monotonic()
    url = f"http://{pod['status']['podIP']}:{port}/livez"
    with Load(url, threads=2, max_requests=60_000, max_seconds=240) as load:
        scaled = wait_until(
            lambda: (d := get(plane, "deployment", deployment, namespace))["spec"]["replicas"] > MIN_REPLICAS and d,
            240,
            "scale-up under load",
            interval=1.0,
        )
        scale_up = time.monotonic() - load_began
        # The added replicas really start on the real node and pass their probes.
        wait_until(
            lambda: (
                get(plane, "deployment", deployment, namespace)["status"].get("readyReplicas", 0)
                >= scaled["spec"]["replicas"]
            ),
            180,
            "the added replicas Ready",
            interval=1.0,
        )
        assert load.running, "the load ran out before the HPA scaled up"
    sent = len(load.outcomes)
    pods = _json(plane, "get", "pods", "-n", namespace, "-l", selector)["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {real_cluster.nodes[0].name}

    load_ended = time.monotonic()
    wait_until(
        lambda: get(plane, "deployment", deployment, namespace)["spec"]["replicas"] == MIN_REPLICAS,
        300,
        "scale-down to minReplicas after the load",
        interval=1.0,
    )
    # The HPA's own status catches up at its next sync.
    hpa = wait_until(
        lambda: _at_floor(get(plane, "hpa", hpa_name, namespace)),
        60,
        "HPA status at minReplicas",
        interval=1.0,
    )
    scale_down = time.monotonic() - load_ended

    messages = _rescales(plane, namespace, hpa_name)
    sizes = [int(m.split(";")[0].removeprefix("New size: ")) for m in messages]
    assert sizes[0] > MIN_REPLICAS, messages
    assert sizes[-1] == MIN_REPLICAS, messages
    assert max(sizes) <= MAX_REPLICAS, messages
    previous = MIN_REPLICAS
    for size, message in zip(sizes, messages, strict=True):
        assert message == f"New size: {size}; reason: {UP_REASON if size > previous else DOWN_REASON}"
        previous = size
    assert _condition(hpa, "ScalingActive")["status"] == "True", hpa["status"]
    print(
        f"\nautoscaling: first metrics {first_metrics:.0f} s after Available; up to {max(sizes)} replicas "
        f"{scale_up:.0f} s into the load ({sent} requests); down to {MIN_REPLICAS} {scale_down:.0f} s after it"
    )
