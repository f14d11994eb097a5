"""Pods for the real node: a small HTTP server from the catalog image and its Service, and
waiting on what the kubelet and kube-proxy do with them (a pod asks for the real node with
tools.cluster.realnode.on_real_node)."""

from __future__ import annotations

import json
import time

from tests.support.process_tier import wait_until
from tools.cluster.controlplane import ControlPlane
from tools.cluster.realnode import on_real_node
from tools.cluster.realnode.storage import helper_image_name
from tools.cluster.toolbox import connects

HTTP_PORT = 8080
SERVICE_PORT = 80  # the port of `service`


def http_server(name: str, namespace: str, image: str) -> dict:
    """Python's http.server from the catalog image: it answers GET and logs each request to stderr."""
    container = {
        "name": "web",
        "image": image,
        "command": ["python3", "-m", "http.server", str(HTTP_PORT), "--directory", "/etc"],
        "ports": [{"containerPort": HTTP_PORT}],
        "readinessProbe": {"httpGet": {"path": "/", "port": HTTP_PORT}, "periodSeconds": 1},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": on_real_node({"containers": [container], "terminationGracePeriodSeconds": 1}),
    }


def service(name: str, namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": SERVICE_PORT, "targetPort": HTTP_PORT}]},
    }


def get(plane: ControlPlane, kind: str, name: str, namespace: str) -> dict:
    return json.loads(plane.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)


def shell_pod(name: str, namespace: str, claim_name: str, script: str, *, real: bool = True) -> dict:
    """A pod that runs `script` in busybox (the helper image the node already holds) and exits."""
    container = {
        "name": "sh",
        "image": helper_image_name(),
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    spec = {
        "containers": [container],
        "restartPolicy": "Never",
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": on_real_node(spec) if real else spec,
    }


def bound_volume(plane: ControlPlane, name: str, namespace: str) -> dict | None:
    found = get(plane, "pvc", name, namespace)
    if found["status"].get("phase") != "Bound":
        return None
    return get(plane, "pv", found["spec"]["volumeName"], "")


def wait_ready(plane: ControlPlane, name: str, namespace: str, timeout: float = 120) -> dict:
    """The pod once Ready (its readiness probe passed on the kubelet); fails with its status."""
    deadline = time.monotonic() + timeout
    while True:
        pod = get(plane, "pod", name, namespace)
        conditions = pod["status"].get("conditions", [])
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return pod
        assert time.monotonic() < deadline, f"pod {name} not Ready after {timeout:.0f}s: {json.dumps(pod['status'])}"
        time.sleep(0.3)


def wait_routed(address: str, port: int, timeout: float = 30) -> None:
    """Until a connection to `address:port` (a Service's ClusterIP) is accepted: kube-proxy writes
    a new Service's rules on its next sync, a moment after the endpoints exist."""
    wait_until(
        lambda: connects(address, port, timeout=2), timeout, f"{address}:{port} routed by kube-proxy", interval=0.3
    )
