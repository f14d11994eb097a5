"""Every environment of the catalog as it deploys, run for real: the chart rendered as its Argo CD
Application renders it, the image `make image` built pulled by digest from the local registry,
dev on SQLite (the migrate init container), staging and prod on a PostgreSQL pod of their own
(the PreSync migration Job first), installed in that order, with the startup, liveness and
readiness probes executed by the kubelet; `helm test` and a client of the Service's ClusterIP
then find it serving. One install per environment serves every test of this module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from tests.support import render
from tests.support.crud import crud_round_trip
from tests.support.registry import push_layout
from tools.cluster.realnode import RealNodes

from . import database
from .environments import RESTRICTED, Installed, install
from .pods import get
from .sync import run_helm_tests

pytestmark = pytest.mark.realnode

ENVIRONMENTS = [pytest.param(environment, id=environment) for environment in render.environments()]


@pytest.fixture(scope="session")
def postgresql_image(node_image: str) -> str:
    """tests/realnode/postgresql's image in the node's registry: `<registry>/postgresql@<digest>`."""
    registry = node_image.split("/")[0]
    started = time.monotonic()
    layout = database.build_image()
    digest = push_layout(layout, f"{registry}/postgresql:15")
    print(f"\npostgresql image {digest} in {time.monotonic() - started:.1f} s")
    return f"{registry}/postgresql@{digest}"


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def installed(
    request: pytest.FixtureRequest, real_cluster: RealNodes, real_namespace, node_image: str
) -> Iterator[Installed]:
    plane = real_cluster.plane
    assert plane is not None
    namespace = real_namespace(**RESTRICTED)
    started = time.monotonic()
    result = install(plane, request.param, node_image, namespace, lambda: request.getfixturevalue("postgresql_image"))
    print(f"\n{request.param}: synced and settled in {time.monotonic() - started:.1f} s; hooks {result.hook_jobs}")
    yield result
    # The next environment's pods need the node more than these do.
    plane.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture
def client(installed: Installed) -> Iterator[httpx.Client]:
    """A client of the Service's ClusterIP from the host, once kube-proxy has written its rules."""
    with httpx.Client(base_url=f"http://{installed.cluster_ip}", timeout=10) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.get("/livez")
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield client


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_every_pod_runs_the_pinned_digest_migrated_first_with_its_probes_run_by_the_kubelet(
    installed: Installed, real_cluster: RealNodes
):
    plane = installed.plane
    deployment = get(plane, "deployment", installed.deployment["metadata"]["name"], installed.namespace)
    digest = deployment["spec"]["template"]["spec"]["containers"][0]["image"].split("@")[1]
    pods = installed.pods()

    assert len(pods) == installed.replicas
    for pod in pods:
        spec = {c["name"]: c for c in pod["spec"]["containers"]}["catalog"]
        status = {c["name"]: c for c in pod["status"]["containerStatuses"]}["catalog"]
        assert pod["spec"]["nodeName"] == real_cluster.nodes[0].name
        assert status["imageID"].endswith(digest), status["imageID"]
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= spec.keys()
        # started: the startup probe passed; ready: the readiness probe passes (both on the kubelet).
        assert (status["ready"], status["started"], status["restartCount"]) == (True, True, 0)
        started = _time(status["state"]["running"]["startedAt"])
        if installed.database is None:  # SQLite: the migrate init container, in the pod, first
            (migrate,) = pod["status"]["initContainerStatuses"]
            assert migrate["state"]["terminated"]["exitCode"] == 0
            assert _time(migrate["state"]["terminated"]["finishedAt"]) <= started
        else:  # PostgreSQL: the PreSync Job, done before the Deployment's pods were made
            (job,) = installed.hook_jobs.values()
            assert "initContainers" not in pod["spec"]
            assert (job["succeeded"], job["nodes"]) == (1, [real_cluster.nodes[0].name])
            assert _time(job["completionTime"]) <= _time(pod["metadata"]["creationTimestamp"])
        readyz = httpx.get(f"http://{pod['status']['podIP']}:{spec['ports'][0]['containerPort']}/readyz", timeout=5)
        assert readyz.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_readyz_and_an_authenticated_crud_round_trip_through_the_cluster_ip(installed: Installed, client: httpx.Client):
    readyz = client.get("/readyz")

    assert readyz.status_code == 200
    assert readyz.json() == {"status": "ok", "checks": {"database": "ok"}}
    crud_round_trip(client, installed.token())


def test_helm_test_passes(installed: Installed, real_cluster: RealNodes):
    results = run_helm_tests(installed.plane, installed.rendered.documents, installed.namespace)

    name = f"{installed.deployment['metadata']['name']}-test"
    assert {pod: result[:2] for pod, result in results.items()} == {name: ("Succeeded", real_cluster.nodes[0].name)}, (
        results
    )
    assert results[name][2].split() == ["/livez", "200", "/readyz", "200"]
