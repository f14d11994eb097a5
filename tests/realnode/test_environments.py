"""Every environment of the catalog as it deploys, run for real: the chart rendered as its Argo CD
Application renders it, the image `make image` built pulled by digest from the local registry,
dev on SQLite (the migrate init container), staging and prod on a PostgreSQL pod of their own
(the PreSync migration Job first), installed in that order, with the startup, liveness and
readiness probes executed by the kubelet; `helm test` and a client of the Service's ClusterIP
then find it serving. Staging and prod then roll to a new digest under load without a failed
request, and evictions respect their PodDisruptionBudget. One install per environment serves
every test of this module."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from tests.support import render
from tests.support.crud import crud_round_trip
from tools.cluster.realnode import RealNodes

from .environments import RESTRICTED, Installed, install, rendered_for
from .load import Load
from .pods import get, wait_routed
from .sync import run_helm_tests, sync

pytestmark = pytest.mark.realnode

ENVIRONMENTS = [pytest.param(environment, id=environment) for environment in render.environments()]


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def installed(
    request: pytest.FixtureRequest, real_cluster: RealNodes, real_namespace, node_image: str
) -> Iterator[Installed]:
    plane = real_cluster.plane
    assert plane is not None
    namespace = real_namespace(**RESTRICTED)
    started = time.monotonic()
    result = install(plane, request.param, node_image, namespace, lambda: request.getfixturevalue("postgresql_image"))
    print(f"\n{request.param}: synced and settled in {time.monotonic() - started:.1f} s")
    yield result
    # The next environment's pods need the node more than these do.
    plane.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture
def client(installed: Installed) -> Iterator[httpx.Client]:
    """A client of the Service's ClusterIP from the host, once kube-proxy has written its rules."""
    port = installed.rendered.one("Service")["spec"]["ports"][0]["port"]
    wait_routed(installed.cluster_ip, port)
    with httpx.Client(base_url=f"http://{installed.cluster_ip}:{port}", timeout=10) as client:
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


# Dev recreates its one pod (SQLite has one writer), so it has downtime by design; these two roll.
ROLLING = [pytest.param(environment, id=environment) for environment in ("staging", "prod")]


@pytest.mark.parametrize("installed", ROLLING, indirect=True)
def test_rolling_update_to_a_new_digest_fails_no_request_under_load(installed: Installed, second_image: str):
    plane = installed.plane
    deployment = installed.deployment
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    rendered = rendered_for(installed.environment, second_image, installed.namespace)
    headers = {"Authorization": f"Bearer {installed.token()}"}

    with Load(f"http://{installed.cluster_ip}/v1/products", headers, threads=4, max_requests=6000) as load:
        load.wait_for(20)
        started = time.monotonic()
        sync(plane, rendered.documents, installed.namespace)
        installed.rendered = rendered
        installed.wait_settled()
        finished = time.monotonic()
        load.wait_for(len(load.outcomes) + 20)
    print(f"\nrollout {finished - started:.1f} s under {len(load.outcomes)} requests")

    assert load.failures() == []
    # The load ran before, through and after the whole rollout.
    assert min(at for at, _ in load.outcomes) < started
    assert max(at for at, _ in load.outcomes) > finished
    digest = second_image.split("@")[1]
    for pod in installed.pods():
        (status,) = [c for c in pod["status"]["containerStatuses"] if c["name"] == "catalog"]
        assert status["imageID"].endswith(digest), status["imageID"]
        # The probe settings and preStop the chart renders are the ones that ran.
        (spec,) = [c for c in pod["spec"]["containers"] if c["name"] == "catalog"]
        (rendered_spec,) = rendered.one("Deployment")["spec"]["template"]["spec"]["containers"]
        for key in ("startupProbe", "livenessProbe", "readinessProbe", "lifecycle"):
            assert _as_rendered(spec[key], rendered_spec[key]) == rendered_spec[key]


def _as_rendered(live: object, rendered: object) -> object:
    """`live` without the fields the apiserver defaulted (those `rendered` does not name)."""
    if isinstance(live, dict) and isinstance(rendered, dict):
        return {key: _as_rendered(live[key], rendered[key]) for key in rendered if key in live}
    return live


def _evict(plane, pod: dict):
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod["metadata"]["name"],
                "namespace": pod["metadata"]["namespace"]}}  # fmt: skip
    path = f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}/eviction"
    return plane.kubectl("create", "--raw", path, "-f", "-", input=json.dumps(eviction), check=False)


def _wait_budget(installed: Installed, allowed: int, timeout: float = 60) -> dict:
    name = installed.rendered.one("PodDisruptionBudget")["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while True:
        budget = get(installed.plane, "pdb", name, installed.namespace)
        status = budget.get("status", {})
        observed = status.get("observedGeneration") == budget["metadata"]["generation"]
        if observed and (status.get("disruptionsAllowed"), status.get("currentHealthy")) == (
            allowed,
            installed.replicas,
        ):
            return budget
        assert time.monotonic() < deadline, f"budget {name} not at {allowed} allowed after {timeout:.0f}s: {status}"
        time.sleep(0.5)


@pytest.mark.parametrize("installed", ROLLING, indirect=True)
def test_eviction_is_refused_while_it_would_break_the_disruption_budget(installed: Installed):
    plane = installed.plane
    budget = _wait_budget(installed, allowed=1)
    assert (installed.replicas, budget["spec"]["maxUnavailable"]) == (2, 1)
    first, second = installed.pods()

    admitted = _evict(plane, first)
    refused = _evict(plane, second)
    installed.wait_settled()
    _wait_budget(installed, allowed=1)
    again = _evict(plane, second)
    installed.wait_settled()

    assert admitted.returncode == 0, admitted.stderr
    assert refused.returncode != 0
    assert "(TooManyRequests)" in refused.stderr, refused.stderr  # 429
    assert "would violate the pod's disruption budget" in refused.stderr, refused.stderr
    assert again.returncode == 0, again.stderr
    assert {p["metadata"]["name"] for p in installed.pods()}.isdisjoint(
        {first["metadata"]["name"], second["metadata"]["name"]}
    )
