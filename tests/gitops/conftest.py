"""gitops-tier fixtures for the pipeline's steps: a seeded bare git remote per test, a cosign key
pair per session, and a HOME of the test's own for the steps' processes; and, per module, the
real Argo Workflows controller on the real node, a registry on the node's bridge address and the
step image in it."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.container.podman import build_steps_image, push_image
from tests.gitops.steps_cli import SeededRemote, python_ready
from tests.support.registry import cosign_keypair
from tests.support.tiers import skip_or_fail
from tools.cluster import processes
from tools.cluster.argo_workflows import ArgoWorkflows, executor_layout
from tools.cluster.realnode import RealNodes, host
from tools.cluster.registry import LocalRegistry, push_layout
from tools.cluster.toolbox import missing


@pytest.fixture
def steps_home(tmp_path: Path) -> Path:
    unmet = python_ready()
    if unmet:
        skip_or_fail(f"the pipeline's steps need {unmet}")
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def seeded_remote(tmp_path: Path) -> SeededRemote:
    return SeededRemote(tmp_path)


@pytest.fixture(scope="session")
def cosign_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private, public): the platform's signing key as the pin step sees it."""
    if missing(["cosign"]):
        skip_or_fail("the pipeline's steps need `make tools` (cosign in .tools/bin)")
    return cosign_keypair(tmp_path_factory.mktemp("cosign"))


@pytest.fixture(scope="module")
def argo(real_cluster: RealNodes, node_image: str) -> Iterator[ArgoWorkflows]:
    """workflow-controller and `argo server` (Workflow pods pull the executor from node_image's
    registry), the pipelines' RBAC in their namespace; a module applies its own templates."""
    absent = missing(["argo", "workflow-controller", "argoexec"])
    if absent:
        skip_or_fail(f"gitops tier needs {', '.join(absent)} (`make tools`)")
    began = time.monotonic()
    registry = node_image.split("/")[0]
    with tempfile.TemporaryDirectory() as layout:  # the registry keeps the image; the layout is not kept
        digest = push_layout(executor_layout(Path(layout)), f"{registry}/argoexec:latest")
    pushed = time.monotonic() - began
    argo = ArgoWorkflows(real_cluster, f"{registry}/argoexec@{digest}").start()
    print(f"\nargo workflows up: {argo.startup_seconds} s, executor {argo.executor_image} in {pushed:.1f} s")
    children = list(argo.group.children)
    try:
        yield argo
    finally:
        argo.stop()
        left = [f"process {child.name}" for child in children if processes.alive(child.pid)]
        left += [f"chain {chain}" for chain in host.chains_named(argo.chain)]
        namespace = argo.plane.kubectl("get", "namespace", argo.namespace, check=False)
        left += [f"namespace {argo.namespace}"] if namespace.returncode == 0 else []
        left += [f"state directory {argo.state_dir}"] if argo.state_dir.exists() else []
        assert not left, f"Argo Workflows left this behind: {left}"


@pytest.fixture(scope="module")
def bridge_registry(real_cluster: RealNodes) -> Iterator[LocalRegistry]:
    """A registry on the real node's bridge address, which the node trusts: pods pull the step
    image from it and their cosign reads signatures there. Its files live in the node's state
    directory, so the node's teardown removes what a killed run left."""
    registry = LocalRegistry(real_cluster.state_dir / "bridge-registry", real_cluster.nodes[0].gateway)
    registry.root.mkdir()
    try:
        registry.start()
        real_cluster.trust_registry(registry.host)
        yield registry
    finally:
        pids = registry.pids
        registry.stop()
        shutil.rmtree(registry.root)
        assert not [pid for pid in pids if processes.alive(pid)], "the bridge registry outlived its fixture"


@pytest.fixture(scope="module")
def steps_image(bridge_registry: LocalRegistry) -> str:
    """argo-workflows/image built (or reused) and pushed to the bridge registry: REPOSITORY@digest."""
    tag = build_steps_image()
    began = time.monotonic()
    pushed = push_image(tag, f"{bridge_registry.host}/catalog-steps:{tag.rsplit(':', 1)[1]}")
    print(f"\nstep image {tag} pushed in {time.monotonic() - began:.1f} s")
    return pushed
