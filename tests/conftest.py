"""Platform-test fixtures: one loopback control plane per session, a fresh namespace per test and a
local OCI registry per test.
A missing tool fails under CI=true (tests.support.tiers.skip_or_fail; the root conftest.py fails any other skip)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.namespaces import namespace_factory
from tests.support.registry import LocalRegistry
from tests.support.schemas import ensure_schemas, kubeconform_args, schemas_cached
from tests.support.tiers import skip_or_fail
from tools.cluster.controlplane import KUBECONFIG as SHARED_KUBECONFIG
from tools.cluster.controlplane import ControlPlane, claim_shared_kubeconfig
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
