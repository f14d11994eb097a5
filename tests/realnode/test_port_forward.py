"""The catalog on the real cluster by hand, as docs/testing.md walks a user through it after
`make cluster-up`: `make cluster-image` (load_catalog) imports `make image`'s image into the node's
containerd with no registry, `helm install` of the dev environment with the values it writes,
`kubectl port-forward` to the Service, then /readyz and a token from the pod (`catalog token`)
for an authenticated round trip through the forward."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from tests.container.podman import make_image
from tests.support import render
from tests.support.crud import crud_round_trip
from tests.support.tiers import skip_or_fail
from tools.cluster.realnode import CATALOG_REPOSITORY, RealNodes, load_catalog, node_values
from tools.cluster.realnode.images import ctr, node_sockets
from tools.cluster.toolbox import missing

from .pods import port_forward

pytestmark = pytest.mark.realnode

RELEASE = "catalog"  # the docs' `helm install catalog`: the Deployment and Service are named so


def node_images(state_dir: Path) -> set[str]:
    """The image names each node's containerd holds (the same on every node)."""
    held = {frozenset(ctr(socket, "images", "ls", "--quiet").stdout.split()) for socket in node_sockets(state_dir)}
    assert len(held) == 1, held
    return set(next(iter(held)))


def test_dev_chart_from_the_imported_image_answers_through_a_port_forward(
    real_cluster: RealNodes, real_namespace, tmp_path: Path
):
    plane = real_cluster.plane
    assert plane is not None
    absent = [name for name in ("podman", "buildah") if shutil.which(name) is None] + missing(["helm", "ctr"])
    if absent:
        skip_or_fail(f"the by-hand path needs {', '.join(absent)}")
    namespace = real_namespace()
    before = node_images(real_cluster.state_dir)
    build = make_image()
    values = tmp_path / "catalog-values.yaml"
    try:
        reference = load_catalog(real_cluster.state_dir, build.layout, values)

        assert reference == f"{CATALOG_REPOSITORY}@{build.digest}"
        assert reference in node_images(real_cluster.state_dir)
        assert yaml.safe_load(values.read_text()) == node_values(reference)

        installed = render.helm(
            "install", RELEASE, render.CHART, f"--kubeconfig={plane.kubeconfig}", "--namespace", namespace,
            "--values", render.ENVIRONMENTS / "dev" / "values.yaml", "--values", values, "--wait", "--timeout=5m",
            check=False,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stdout + installed.stderr
        (pod,) = json.loads(plane.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
        assert pod["spec"]["nodeName"] == real_cluster.nodes[0].name
        assert {c["image"] for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]} == {reference}
        token = plane.kubectl("exec", "-n", namespace, f"deploy/{RELEASE}", "-c", "catalog", "--", "catalog", "token")

        with port_forward(plane, namespace, f"svc/{RELEASE}", 80) as url, httpx.Client(base_url=url) as client:
            ready = client.get("/readyz", timeout=10)
            listed = client.get("/v1/products", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
            crud_round_trip(client, token.stdout.strip())

        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "checks": {"database": "ok"}})
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == []
    finally:
        render.helm("uninstall", RELEASE, f"--kubeconfig={plane.kubeconfig}", "--namespace", namespace, "--wait",
                    check=False)  # fmt: skip
        for name in node_images(real_cluster.state_dir) - before:
            for socket in node_sockets(real_cluster.state_dir):
                ctr(socket, "images", "rm", name)
    assert node_images(real_cluster.state_dir) == before
