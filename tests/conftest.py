"""Platform-test fixtures: one loopback control plane per session, a fresh namespace per test and a
local OCI registry per test; for the realnode and gitops tiers, one control plane serving on a real
node's bridge with that node joined, and the catalog image `make image` built, in a local registry
the node pulls from by digest.
A missing tool fails under CI=true (tests.support.tiers.skip_or_fail; the root conftest.py fails any other skip)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.podman import make_image
from tests.realnode import database
from tests.support.namespaces import namespace_factory
from tests.support.schemas import ensure_schemas, kubeconform_args, schemas_cached
from tests.support.tiers import skip_or_fail
from tools.cluster import realnode
from tools.cluster.controlplane import KUBECONFIG as SHARED_KUBECONFIG
from tools.cluster.controlplane import ControlPlane, claim_shared_kubeconfig
from tools.cluster.realnode.cleanup import leftovers, live_runs
from tools.cluster.registry import LocalRegistry, crane, push_layout
from tools.cluster.toolbox import CONTROL_PLANE_BINARIES, missing


@pytest.fixture(scope="session")
def control_plane():
    """etcd + kube-apiserver + controller-manager + scheduler + kwok nodes, CRDs installed.
    KUBECONFIG points at it for the session, so subprocesses (kubectl, helm, ansible) find it;
    .tools/kubeconfig too, unless a `make cluster-up` plane is running (that one keeps it)."""
    absent = missing(CONTROL_PLANE_BINARIES)
    if absent:
        skip_or_fail(f"cluster tier needs `make tools` (.tools/bin lacks {', '.join(absent)})")
    plane = ControlPlane().start()
    claimed = claim_shared_kubeconfig(plane)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    try:
        yield plane
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        if claimed:
            SHARED_KUBECONFIG.unlink(missing_ok=True)
        survivors = plane.stop()
        assert not survivors, f"control-plane processes survived the session: {survivors}"


@pytest.fixture(scope="session")
def kubeconform(request) -> list[str]:
    """kubeconform's command line with only local, strict schemas (built-in kinds and our CRDs).
    The schemas are cached in .tools/schemas per pin set; only a cache miss starts the control
    plane, so the static tier stays fast once the cluster tier has run."""
    if missing(["kubeconform"]):
        skip_or_fail("static tier needs `make tools` (.tools/bin lacks kubeconform)")
    if not schemas_cached():
        ensure_schemas(request.getfixturevalue("control_plane"))
    return kubeconform_args()


@pytest.fixture
def new_namespace(control_plane):
    """Factory for namespaces of the test's own; each is deleted afterwards. Returns the name
    once the namespace's default ServiceAccount exists (pods are refused before that)."""
    yield from namespace_factory(control_plane)


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A registry of the test's own (deletes enabled), with crane and cosign beside it."""
    if missing(["registry", "crane", "cosign"]):
        skip_or_fail("the registry tests need `make tools` (registry, crane, cosign in .tools/bin)")
    registry = LocalRegistry(tmp_path / "registry")
    registry.root.mkdir()
    try:
        yield registry.start()
    finally:
        registry.stop()


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


@pytest.fixture(scope="session")
def second_image(node_image: str) -> str:
    """The same image under a second digest (one more label), as the next build's pin would be."""
    repository = node_image.split("@")[0]
    mutated = crane(
        "mutate", node_image, "--label", "org.catalog-platform.test-rollout=second", "-t", f"{repository}:second"
    )
    return f"{repository}@{mutated.split('@')[1]}"


@pytest.fixture(scope="session")
def postgresql_image(node_image: str) -> str:
    """tests/realnode/postgresql's image in the node's registry: `<registry>/postgresql@<digest>`."""
    registry = node_image.split("/")[0]
    started = time.monotonic()
    layout = database.build_image()
    digest = push_layout(layout, f"{registry}/postgresql:15")
    print(f"\npostgresql image {digest} in {time.monotonic() - started:.1f} s")
    return f"{registry}/postgresql@{digest}"
