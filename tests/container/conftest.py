"""Container-tier fixtures: the image `make image` builds (once per session, or reused when the
same sources were built already), containers run the chart's way, a PostgreSQL the containers
reach (the local registry is tests/conftest.py's). Locally a missing podman/buildah skips the tier; CI=true fails it."""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Iterator

import pytest

from tests.container.podman import (
    ChartPod,
    Container,
    ImageBuild,
    dev_pod,
    make_image,
    podman,
    session_labels,
    start,
    sweep_orphans,
)
from tests.support.postgres import PostgresServer, find_bindir, throwaway_server
from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import free_port

_names = itertools.count()


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
