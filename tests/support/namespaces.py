"""Namespaces of a test's own on a control plane: created with labels, deleted afterwards."""

from __future__ import annotations

import time
import uuid

from tools.cluster.controlplane import ControlPlane


def namespace_factory(control_plane: ControlPlane):
    """new_namespace's body, for any control plane (the realnode tier has its own)."""
    created: list[str] = []

    def create(**labels: str) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels},
        }
        control_plane.apply([namespace])
        created.append(name)
        deadline = time.monotonic() + 30
        while control_plane.kubectl("get", "sa", "default", "-n", name, check=False).returncode:
            assert time.monotonic() < deadline, f"no default ServiceAccount in {name} after 30s"
            time.sleep(0.2)
        return name

    yield create
    for name in created:
        control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
