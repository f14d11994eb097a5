"""Container-tier fixtures: the image `make image` builds (once per session, or reused when the
same sources were built already), containers run the chart's way, a PostgreSQL the containers
reach, and a local registry. Locally a missing podman/buildah skips the tier; CI=true fails it."""

from __future__ import annotations

import functools
import itertools
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import jwt
import pytest

from apps.catalog.tests.postgres_server import PostgresServer, find_bindir, free_port, throwaway_server
from apps.catalog.tests.signing import rsa_key
from tests.conftest import skip_or_fail
from tests.platform.registry import LocalRegistry
from tests.platform.toolbox import missing

from .podman import ChartPod, Container, ImageBuild, make_image, podman, session_labels, start, sweep_orphans

_names = itertools.count()


@functools.cache
def dev_pod() -> ChartPod:
    """The dev environment's catalog container, read off the chart as ArgoCD renders it."""
    return ChartPod.from_chart("dev")


# The identity provider's key of the staging and prod containers: its public half goes into the
# Secret the test creates for them, as an operator does.
SIGNER = "container-issuer"


def token_for(env: Mapping[str, str], scope: str = "catalog:read catalog:write") -> str:
    """A token a container with this environment accepts: its issuer and audience, signed with its
    HS256 secret where it has one (dev: the chart's dev-only Secret), else with SIGNER's key."""
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 300, "scope": scope}
    claims |= {"iss": env["CATALOG_JWT_ISSUER"], "aud": env["CATALOG_JWT_AUDIENCE"]}
    if secret := env.get("CATALOG_JWT_SECRET"):
        return jwt.encode(claims, secret, algorithm="HS256")
    return jwt.encode(claims, rsa_key(SIGNER), algorithm="RS256")


@pytest.fixture(scope="session")
def catalog_image() -> ImageBuild:
    absent = [name for name in ("podman", "buildah") if shutil.which(name) is None]
    if absent:
        skip_or_fail(f"container tier needs {' and '.join(absent)} (apt-get install podman buildah runc debootstrap)")
    sweep_orphans()
    build = make_image()
    print(f"\nimage {build.reference} {build.digest} ({build.seconds:.1f} s, base {build.base})")
    return build


@pytest.fixture
def chart_pod() -> ChartPod:
    return dev_pod()


@pytest.fixture
def data_volume() -> Iterator[str]:
    """A fresh volume for /var/lib/catalog (the chart's PVC); podman copies the image's ownership
    of that directory (UID 10001) into it, as fsGroup does for the PVC."""
    name = f"catalog-test-{next(_names)}-{int(time.time() * 1000)}"
    podman("volume", "create", *session_labels(), name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


@pytest.fixture
def containers(catalog_image: ImageBuild) -> Iterator[Callable[..., Container]]:
    """Start `catalog serve` containers of the built image; each is removed at teardown."""
    started: list[Container] = []

    def run(pod: ChartPod, *, network: str | None = None, port: int | None = None) -> Container:
        name = f"catalog-test-{next(_names)}-{int(time.time() * 1000)}"
        container = start(catalog_image.reference, pod, name, port=port or free_port(), network=network)
        started.append(container)
        return container

    yield run
    for container in started:
        container.remove()


@pytest.fixture(scope="session")
def container_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 for the containers (they join the host's network)."""
    bindir = find_bindir()
    if bindir is None:
        skip_or_fail("the PostgreSQL variant needs the server binaries (apt-get install postgresql)")
    with throwaway_server(bindir, prefix="catalog-container-pg-") as server:
        yield server


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    if missing(["registry", "crane", "cosign"]):
        skip_or_fail("the registry check needs `make tools` (registry, crane, cosign in .tools/bin)")
    registry = LocalRegistry(tmp_path / "registry")
    registry.root.mkdir()
    try:
        yield registry.start()
    finally:
        registry.stop()
