"""Pods for the real node: how a pod asks for it (nodeSelector and the taint's toleration), a
small HTTP server from the catalog image, and waiting on what the kubelet reports."""

from __future__ import annotations

import json
import time

from tools.cluster.controlplane import ControlPlane
from tools.cluster.realnode import NODE_LABEL, TAINT

HTTP_PORT = 8080


def on_real_node(pod_spec: dict) -> dict:
    """`pod_spec` with what puts it on a real node instead of a kwok one."""
    toleration = {"key": TAINT["key"], "operator": "Exists", "effect": TAINT["effect"]}
    return {
        **pod_spec,
        "nodeSelector": {**pod_spec.get("nodeSelector", {}), **NODE_LABEL},
        "tolerations": [*pod_spec.get("tolerations", []), toleration],
    }


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
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": HTTP_PORT}]},
    }


def get(plane: ControlPlane, kind: str, name: str, namespace: str) -> dict:
    return json.loads(plane.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)


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
