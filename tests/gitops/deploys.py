"""What the GitOps tests wait for once Argo CD (tools/cluster/argocd.py) syncs this repository's
environments/ folders onto the real node: an Application Synced at a revision, its Deployment
running an image by digest, Ready on the node."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import yaml

from tests.realnode.sync import explain
from tests.support.process_tier import wait_until
from tools.cluster import argocd
from tools.cluster.controlplane import ControlPlane
from tools.cluster.realnode import label_selector, placement_values

from .remote import Remote, with_header

ENVIRONMENTS = ("dev", "staging", "prod")
DEPLOYMENT = "catalog"  # the chart's fullname for release `catalog`
# Generous: two cores shared with other builds; a sync of staging or prod runs a migration Job first.
TIMEOUT = 420


@dataclass
class Deploys:
    """Argo CD on a control plane whose real node runs the environments."""

    plane: ControlPlane
    node: str
    cd: argocd.ArgoCD

    def application(self, environment: str) -> dict:
        app = self.cd.application(f"catalog-{environment}")
        assert app is not None, f"no Application catalog-{environment}"
        return app


def placed_values(remote: Remote) -> dict[str, str]:
    """Every environment's values.yaml with this cluster's placement (the real node), as an
    operator commits it before the first sync."""
    files = {}
    for environment in ENVIRONMENTS:
        path = f"environments/{environment}/values.yaml"
        files[path] = with_header(remote.read(path), yaml.safe_load(remote.read(path)) | placement_values())
    return files


def synced_at(deploys: Deploys, environment: str, revision: str) -> dict | None:
    """The Application once Synced to `revision` by a Succeeded operation, else None (also while
    the ApplicationSet has not made it yet)."""
    app = deploys.cd.application(f"catalog-{environment}")
    if app is None:
        return None
    status = app.get("status", {})
    operation = status.get("operationState", {})
    if (
        status.get("sync", {}).get("status") == "Synced"
        and status["sync"].get("revision") == revision
        and operation.get("phase") == "Succeeded"
        and operation.get("syncResult", {}).get("revision") == revision
    ):
        return app
    return None


def wait_synced(deploys: Deploys, environment: str, revision: str) -> dict:
    try:
        return wait_until(lambda: synced_at(deploys, environment, revision), TIMEOUT, "sync", interval=1)
    except AssertionError:
        status = deploys.application(environment).get("status", {})
        detail = {key: status.get(key) for key in ("sync", "operationState", "conditions")}
        pytest.fail(
            f"catalog-{environment} not Synced at {revision} in {TIMEOUT} s: {json.dumps(detail)[-3000:]}\n"
            f"{explain(deploys.plane, f'catalog-{environment}')}\n{deploys.cd.log('application-controller')}"
        )


def running(deploys: Deploys, environment: str, image: str) -> bool:
    """The Deployment rolled out with `image`: every replica updated, Ready and available, every
    pod of it on the real node with that digest's image."""
    namespace = f"catalog-{environment}"
    found = deploys.plane.kubectl("get", "deployment", DEPLOYMENT, "-n", namespace, "-o", "json", check=False)
    if found.returncode:
        return False
    deployment = json.loads(found.stdout)
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "catalog"]
    status = deployment.get("status", {})
    wanted = deployment["spec"]["replicas"]
    counts = [status.get(key, 0) for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")]
    if container["image"] != image or status.get("observedGeneration") != deployment["metadata"]["generation"]:
        return False
    if counts != [wanted] * 4:
        return False
    selector = label_selector(deployment["spec"]["selector"]["matchLabels"])
    listed = deploys.plane.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    pods = [p for p in json.loads(listed)["items"] if p["metadata"].get("deletionTimestamp") is None]
    digest = image.split("@")[1]
    return len(pods) == wanted and all(
        pod["spec"]["nodeName"] == deploys.node
        and all(c["ready"] and c["imageID"].endswith(digest) for c in pod["status"].get("containerStatuses", []))
        for pod in pods
    )


def wait_running(deploys: Deploys, environment: str, image: str) -> None:
    try:
        wait_until(lambda: running(deploys, environment, image), TIMEOUT, "rollout", interval=1)
    except AssertionError:
        pytest.fail(f"catalog-{environment} does not run {image}:\n{explain(deploys.plane, f'catalog-{environment}')}")
