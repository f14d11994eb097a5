"""Storage on the real cluster, as Docker Desktop's hostpath gives it: a claim that names no class
gets the default one, local-path-provisioner binds it once the claim's pod is scheduled, a pod on
the real node writes the volume and the next pod reads it back, the data lives in the node's state
directory, and deleting the claim removes it. A claim of a pod kwok runs binds too (on paper)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.process_tier import wait_until
from tools.cluster.controlplane import ControlPlane
from tools.cluster.realnode import RealNodes

from .pods import bound_volume, get, shell_pod

pytestmark = pytest.mark.realnode


def claim(name: str, namespace: str) -> dict:
    """A claim as the platform's roles write one: no storageClassName, so the default class."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    }


def succeeded(plane: ControlPlane, name: str, namespace: str) -> bool:
    phase = get(plane, "pod", name, namespace)["status"].get("phase")
    assert phase != "Failed", plane.kubectl("logs", name, "-n", namespace, check=False).stdout
    return phase == "Succeeded"


def test_the_default_storage_class_is_the_provisioners_and_waits_for_the_pod(real_cluster: RealNodes):
    assert real_cluster.plane is not None
    classes = json.loads(real_cluster.plane.kubectl("get", "storageclass", "-o", "json").stdout)["items"]

    defaults = [
        (c["metadata"]["name"], c["provisioner"], c["volumeBindingMode"], c["reclaimPolicy"])
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]

    assert defaults == [("local-path", "rancher.io/local-path", "WaitForFirstConsumer", "Delete")]


def test_a_claim_binds_on_the_real_node_and_its_data_outlives_the_pod(real_cluster: RealNodes, real_namespace):
    plane, node = real_cluster.plane, real_cluster.nodes[0]
    assert plane is not None
    namespace = real_namespace()
    token = f"written-{time.monotonic_ns()}"
    began = time.monotonic()

    plane.apply([claim("data", namespace), shell_pod("writer", namespace, "data", f"echo {token} > /data/token")])
    volume = wait_until(lambda: bound_volume(plane, "data", namespace), 180, "claim Bound", interval=0.3)
    print(f"\nclaim bound in {time.monotonic() - began:.1f} s")
    wait_until(lambda: succeeded(plane, "writer", namespace), 180, "writer Succeeded", interval=0.3)
    plane.apply([shell_pod("reader", namespace, "data", "cat /data/token")])
    wait_until(lambda: succeeded(plane, "reader", namespace), 180, "reader Succeeded", interval=0.3)

    directory = Path(volume["spec"]["hostPath"]["path"])
    (affinity,) = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert get(plane, "pod", "writer", namespace)["spec"]["nodeName"] == node.name
    assert affinity["matchExpressions"][0]["values"] == [node.name]
    assert directory.parent == node.directory / "volumes"
    assert (directory / "token").read_text() == f"{token}\n"
    assert plane.kubectl("logs", "reader", "-n", namespace).stdout == f"{token}\n"

    plane.kubectl("delete", "pod", "writer", "reader", "-n", namespace)
    plane.kubectl("delete", "pvc", "data", "-n", namespace)
    wait_until(
        lambda: plane.kubectl("get", "pv", volume["metadata"]["name"], check=False).returncode,
        180,
        "volume deleted",
        interval=0.3,
    )
    assert not directory.exists()


def test_a_claim_of_a_pod_kwok_runs_binds_without_touching_the_host(real_cluster: RealNodes, real_namespace):
    plane = real_cluster.plane
    assert plane is not None
    namespace = real_namespace()

    plane.apply([claim("data", namespace), shell_pod("on-kwok", namespace, "data", "true", real=False)])
    volume = wait_until(lambda: bound_volume(plane, "data", namespace), 180, "claim Bound", interval=0.3)

    (affinity,) = volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    (node,) = affinity["matchExpressions"][0]["values"]
    assert get(plane, "node", node, "")["metadata"]["labels"]["type"] == "kwok"
    assert Path(volume["spec"]["hostPath"]["path"]).parent == real_cluster.state_dir / "kwok-volumes"
    assert not (real_cluster.state_dir / "kwok-volumes").exists()
