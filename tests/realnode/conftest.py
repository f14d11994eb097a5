"""Realnode-tier fixtures: a control plane serving on a real node's bridge, with that node joined,
for the whole session; the catalog image `make image` built, in a local registry the node pulls
from by digest. Locally a missing prerequisite (root, tools, runc, CNI plugins) skips the tier;
CI=true fails it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from tests.container.podman import make_image
from tests.support.namespaces import namespace_factory
from tests.support.registry import LocalRegistry, push_layout
from tests.support.tiers import skip_or_fail
from tools.cluster import realnode
from tools.cluster.realnode.cleanup import leftovers, live_runs
from tools.cluster.toolbox import missing


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[realnode.RealNodes]:
    unmet = realnode.unmet_prerequisites()
    if unmet:
        skip_or_fail(f"realnode tier needs {'; '.join(unmet)}")
    # The cluster `make cluster-up` gives a user, CRDs included (test_site converges site.yml on it).
    plane, nodes = realnode.start_cluster(1, install_crds=True)
    print(f"\nreal node up: plane {plane.startup_seconds['total']} s, node {nodes.startup_seconds['nodes']} s")
    record = (nodes.state_dir / "node.json").read_text()
    try:
        yield nodes
    finally:
        nodes.stop()
        survivors = plane.stop()
        assert not survivors, f"control-plane processes survived the session: {survivors}"
        left = leftovers(nodes.state_dir, json.loads(record), shared=not live_runs())
        assert not left, f"the real node left this behind: {left}"


@pytest.fixture(scope="session")
def node_image(real_cluster: realnode.RealNodes, tmp_path_factory) -> Iterator[str]:
    """`make image`'s catalog image, pushed as is to a local registry: `<registry>/catalog@<digest>`."""
    absent = [name for name in ("podman", "buildah") if shutil.which(name) is None]
    absent += missing(["registry", "crane"])
    if absent:
        skip_or_fail(f"realnode tier needs {', '.join(absent)} for the catalog image")
    build = make_image()
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    registry.start()
    try:
        digest = push_layout(build.layout, f"{registry.host}/catalog:{build.reference.rsplit(':', 1)[1]}")
        real_cluster.trust_registry(registry.host)
        yield f"{registry.host}/catalog@{digest}"
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def real_namespace(real_cluster: realnode.RealNodes):
    """Factory for namespaces on the real cluster's plane; each is deleted after the module."""
    assert real_cluster.plane is not None
    yield from namespace_factory(real_cluster.plane)
