"""One environment of the catalog installed on the real node: its chart rendered as its Argo CD
Application renders it, what an operator creates first (PostgreSQL and the Secret, where the
environment uses them), then an Argo CD-style sync; and what a client needs to talk to it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.container.podman import operator_secrets, token_for
from tests.support import render
from tools.cluster.controlplane import ControlPlane
from tools.cluster.realnode import label_selector, node_values

from . import database
from .pods import get
from .sync import sync

# Namespaces of the catalog enforce the restricted Pod Security profile (roles/namespaces).
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}


def rendered_for(environment: str, image: str, namespace: str, **overrides) -> render.Rendered:
    """The environment's Application rendered for this cluster (node_values), `overrides` on top."""
    values = {**node_values(image), **overrides}
    result = render.render(*render.value_files(render.applications()[environment]), values=values, namespace=namespace)
    assert isinstance(result, render.Rendered), result
    return result


@dataclass
class Installed:
    """An environment synced into `namespace`, with the address of its Service."""

    plane: ControlPlane
    environment: str
    namespace: str
    rendered: render.Rendered
    cluster_ip: str
    database: database.Database | None
    hook_jobs: dict[str, dict]  # the final status of each PreSync Job of the last sync

    @property
    def deployment(self) -> dict:
        return self.rendered.one("Deployment")

    @property
    def selector(self) -> str:
        return label_selector(self.deployment["spec"]["selector"]["matchLabels"])

    @property
    def replicas(self) -> int:
        """Pods at rest: the HPA's minimum where there is one (it scales up to it without metrics)."""
        autoscaler = self.rendered.of_kind("HorizontalPodAutoscaler")
        return autoscaler[0]["spec"]["minReplicas"] if autoscaler else self.deployment["spec"]["replicas"]

    def pods(self) -> list[dict]:
        """The server's pods that are not terminating."""
        listed = self.plane.kubectl("get", "pods", "-n", self.namespace, "-l", self.selector, "-o", "json").stdout
        return [p for p in json.loads(listed)["items"] if p["metadata"].get("deletionTimestamp") is None]

    def token(self) -> str:
        """A read/write token this environment accepts (dev: its HS256 secret; else the issuer's RS256 key)."""
        env = dict(self.rendered.one("ConfigMap")["data"])
        for secret in self.rendered.of_kind("Secret"):
            env |= secret.get("stringData", {})
        return token_for(env)

    def wait_settled(self, timeout: float = 180) -> None:
        """Every pod of the Deployment Ready and up to date, as many as it runs at rest."""
        name = self.deployment["metadata"]["name"]
        deadline = time.monotonic() + timeout
        while True:
            status = get(self.plane, "deployment", name, self.namespace)["status"]
            counts = [status.get(key, 0) for key in ("replicas", "updatedReplicas", "readyReplicas")]
            if counts == [self.replicas] * 3 and len(self.pods()) == self.replicas:
                return
            assert time.monotonic() < deadline, f"{name} not settled at {self.replicas} after {timeout:.0f}s: {status}"
            time.sleep(0.5)


def install(
    plane: ControlPlane,
    environment: str,
    image: str,
    namespace: str,
    postgresql_image: Callable[[], str],
    **overrides,
) -> Installed:
    """`environment` synced into `namespace` (made beforehand) and settled; `postgresql_image()`
    is asked for only where the environment uses PostgreSQL. `overrides` go on top of its values."""
    rendered = rendered_for(environment, image, namespace, **overrides)
    db = None
    if "DATABASE_URL" not in rendered.one("ConfigMap")["data"]:  # it comes from the Secret: PostgreSQL
        db = database.start(plane, namespace, postgresql_image())
    secrets = [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": data,
         "metadata": {"name": name, "namespace": namespace}}
        for name, data in operator_secrets(environment, db.url if db else "").items()
    ]  # fmt: skip
    if secrets:
        plane.apply(secrets)
    jobs = sync(plane, rendered.documents, namespace)
    service = get(plane, "service", rendered.one("Service")["metadata"]["name"], namespace)
    installed = Installed(plane, environment, namespace, rendered, service["spec"]["clusterIP"], db, jobs)
    installed.wait_settled()
    return installed
