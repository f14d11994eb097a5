"""The image run the way the chart runs it for every environment (read-only root, UID 10001, no
capabilities, the environment's settings and Secrets, its migration first): dev on SQLite (bridge
network, published on 127.0.0.1 only), staging and prod on PostgreSQL with their public key.

The test PostgreSQL listens on 127.0.0.1 only, which a bridge-networked container cannot reach;
the PostgreSQL variant joins the host's network namespace instead and listens on a free loopback
port (CATALOG_HOST=127.0.0.1), so nothing leaves loopback. Everything else is the same pod."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.container.podman import ChartPod, Container, ImageBuild, operator_secrets, podman, run_once, token_for
from tests.support import render
from tests.support.crud import crud_round_trip
from tests.support.postgres import PostgresServer
from tests.support.server import ACK_SETTLE_SECONDS
from tools.cluster.toolbox import free_port

pytestmark = pytest.mark.container

START_TO_READY_BUDGET_SECONDS = 30.0
_databases = iter(range(10_000))


def _fresh_postgres_database(server: PostgresServer) -> str:
    name = f"catalog_container_{next(_databases)}"
    subprocess.run(
        [str(server.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", name],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return server.url_for(name)


@dataclass(frozen=True)
class Deployment:
    """One environment's catalog container as the chart runs it, migrated and ready to start."""

    pod: ChartPod
    network: str | None  # None: the bridge, published on 127.0.0.1:port; "host": listens there itself
    port: int
    token: Callable[..., str]


# Every environment as it ships (dev on SQLite, staging and prod on PostgreSQL with the Secret the
# operator creates), and dev on PostgreSQL too.
VARIANTS = [*(pytest.param(env, id=env) for env in render.environments()), pytest.param("dev-postgres")]


@pytest.fixture(params=VARIANTS)
def deployment(request: pytest.FixtureRequest, catalog_image: ImageBuild, tmp_path: Path) -> Deployment:
    """The environment's Deployment container, its database migrated first the chart's way: the
    init container beside SQLite, the pre-sync hook Job before PostgreSQL."""
    environment, _, engine = request.param.partition("-")
    values = yaml.safe_load((render.ENVIRONMENTS / environment / "values.yaml").read_text()) or {}
    port, network, url = free_port(), None, ""
    if engine == "postgres" or values.get("existingSecret"):
        url, network = _fresh_postgres_database(request.getfixturevalue("container_postgres")), "host"
    secrets = operator_secrets(environment, url)
    pods = {
        name: ChartPod.from_chart(environment, name, secrets=secrets, secret_dir=tmp_path)
        for name in ("migrate", "catalog")
    }
    if network == "host":
        pods = {
            name: pod.with_env(DATABASE_URL=url, CATALOG_HOST="127.0.0.1", CATALOG_PORT=str(port))
            for name, pod in pods.items()
        }
    elif pods["catalog"].data_dir:
        volume = request.getfixturevalue("data_volume")
        pods = {name: pod.with_data_volume(volume) for name, pod in pods.items()}

    migrated = run_once(catalog_image.reference, pods["migrate"], "migrate", network=network)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == "catalog: database schema is up to date"
    return Deployment(pods["catalog"], network, port, partial(token_for, pods["catalog"].env))


@pytest.fixture
def served(deployment: Deployment, containers: Callable[..., Container]) -> Iterator[tuple[Container, httpx.Client]]:
    container = containers(deployment.pod, network=deployment.network, port=deployment.port)
    seconds = container.wait_ready(timeout=START_TO_READY_BUDGET_SECONDS)
    print(f"\nstart-to-ready {seconds:.2f} s")
    with httpx.Client(base_url=container.base_url, timeout=10) as client:
        yield container, client


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_probes_and_a_crud_round_trip_with_a_token(deployment: Deployment, served: tuple[Container, httpx.Client]):
    container, client = served
    assert client.get("/livez").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok", "checks": {"database": "ok"}}
    crud_round_trip(client, deployment.token())
    assert "catalog_http_request_duration_seconds_count" in client.get("/metrics").text

    stdout, stderr = container.logs()
    lines = _json_lines(stdout)  # every stdout line is JSON, or this raises
    access = [(line["method"], line["route"], line["status"]) for line in lines if line["logger"] == "catalog.access"]
    assert ("POST", "/v1/products", 201) in access
    assert ("DELETE", "/v1/products/{product_id}", 204) in access
    assert all(line["request_id"] and line["trace_id"] for line in lines if line["logger"] == "catalog.access")
    assert stderr == ""


def test_sigterm_drains_then_exits_cleanly_within_the_grace_period(
    deployment: Deployment, served: tuple[Container, httpx.Client]
):
    container, client = served
    pod = deployment.pod
    # The kubelet runs preStop first, then SIGTERM; both count against the grace period.
    grace = pod.grace_seconds - pod.prestop_seconds
    # A SIGTERM before Sanic's manager has seen the worker's ack leaves it spinning >30 s and
    # exiting 1, past any grace period (the process tier found it; see ACK_SETTLE_SECONDS there).
    time.sleep(ACK_SETTLE_SECONDS)

    started = time.monotonic()
    container.terminate()
    # The signal lands a moment after `podman kill` returns; the drain (2 s) keeps serving meanwhile.
    statuses = [client.get("/readyz").status_code]
    while statuses[-1] == 200 and time.monotonic() - started < 1.5:
        statuses.append(client.get("/readyz").status_code)
    exit_code = container.wait_exit(timeout=grace)
    elapsed = time.monotonic() - started

    assert statuses[-1] == 503, statuses
    assert exit_code == 0
    assert elapsed < grace
    messages = [line["message"] for line in _json_lines(container.logs()[0])]
    assert messages.index("draining") < messages.index("stopped")


def test_serve_never_migrates(catalog_image: ImageBuild, chart_pod: ChartPod, data_volume: str, containers):
    pod = chart_pod.with_data_volume(data_volume)
    container = containers(pod)
    container.wait_ready(timeout=START_TO_READY_BUDGET_SECONDS)
    database = podman("volume", "inspect", "--format", "{{.Mountpoint}}", data_volume).stdout.strip()
    headers = {"Authorization": f"Bearer {token_for(pod.env)}"}

    with sqlite3.connect(f"file:{database}/catalog.sqlite3?mode=ro", uri=True) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    unmigrated = httpx.get(f"{container.base_url}/v1/products", headers=headers, timeout=10)
    migrated = run_once(catalog_image.reference, pod, "migrate")
    after = httpx.get(f"{container.base_url}/v1/products", headers=headers, timeout=10)

    assert "products" not in tables
    # No table yet: the query fails inside the server (500 internal-error), nothing creates one.
    assert unmigrated.status_code == 500
    assert unmigrated.json()["type"] == "/problems/internal-error"
    assert migrated.returncode == 0, migrated.stderr
    assert after.status_code == 200, after.text
