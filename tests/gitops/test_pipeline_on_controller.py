"""The pipeline's own `pin` and `rollback` WorkflowTemplates (argo-workflows/templates), applied as
the repository has them, run as Workflows on the real Argo Workflows controller with their pods on
the real node. Everything a pod talks to listens on the node's bridge address, since pods cannot
reach the host's loopback: `git daemon` serving a remote seeded with environments/, and a registry
holding the step image (argo-workflows/image) and the images to pin, where the step's cosign finds
their signatures. A signed image is pinned (its digest, tag and source commit on main, the file's
header kept), an image the platform's key did not sign fails the Workflow with main unmoved, and
rollback reverts dev to the pin it had before. Each Workflow's wall time is printed."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from tests.gitops.remote import GitDaemon
from tests.gitops.steps_cli import SeededRemote, python_ready
from tests.gitops.workflows import create_workflow, latencies
from tests.support.registry import cosign_sign
from tests.support.tiers import skip_or_fail
from tools.cluster.argo_workflows import ArgoWorkflows
from tools.cluster.realnode import RealNodes
from tools.cluster.registry import LocalRegistry, crane
from tools.cluster.toolbox import REPO_ROOT

pytestmark = pytest.mark.gitops

TEMPLATES = REPO_ROOT / "argo-workflows" / "templates"
PIN_FILE = "environments/dev/image.yaml"
# The labels apps/catalog/image/build.sh gives the image: what the pin records beside the digest.
VERSION, REVISION = "org.opencontainers.image.version", "org.opencontainers.image.revision"
# The pin step's exit code for an image that does not verify (pipeline.errors.Failed).
REFUSED = 1


@dataclass(frozen=True)
class Images:
    """The node's catalog image in the bridge registry, signed with the platform's key, and the
    same image under a second digest, which nobody signed (both REPOSITORY@digest)."""

    signed: str
    unsigned: str
    tag: str
    source_commit: str


@pytest.fixture(scope="module")
def images(bridge_registry: LocalRegistry, node_image: str, second_image: str, cosign_keys) -> Images:
    repository = f"{bridge_registry.host}/catalog"
    began = time.monotonic()
    for image, tag in ((node_image, "signed"), (second_image, "unsigned")):
        crane("copy", image, f"{repository}:{tag}")
    print(f"\ncatalog images copied to the bridge registry in {time.monotonic() - began:.1f} s")
    signed, unsigned = (f"{repository}@{image.split('@')[1]}" for image in (node_image, second_image))
    cosign_sign(signed, cosign_keys[0])
    labels = json.loads(crane("config", signed))["config"]["Labels"]
    return Images(signed, unsigned, labels[VERSION], labels[REVISION])


@pytest.fixture
def git_remote(real_cluster: RealNodes) -> Iterator[tuple[SeededRemote, str]]:
    """The remote seeded with environments/, served by `git daemon` on the bridge address: (the
    remote, its git:// URL)."""
    unmet = python_ready()
    if unmet:
        skip_or_fail(f"the git remote needs {unmet}")
    base = real_cluster.state_dir / "git-remote"
    base.mkdir()
    try:
        remote = SeededRemote(base)
        with GitDaemon(base, real_cluster.nodes[0].gateway) as daemon:
            yield remote, daemon.url(remote)
    finally:
        shutil.rmtree(base)


@pytest.fixture(scope="module")
def pipeline(argo: ArgoWorkflows, cosign_keys) -> ArgoWorkflows:
    """pin.yaml and rollback.yaml as they are, and the Secret with the platform's public key that
    pin mounts (the argo_workflows role makes it from the key)."""
    documents = [yaml.safe_load((TEMPLATES / f"{name}.yaml").read_text()) for name in ("pin", "rollback")]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cosign-key"},
        "stringData": {"cosign.pub": cosign_keys[1].read_text()},
    }
    argo.apply([*documents, secret])
    return argo


def submit(argo: ArgoWorkflows, node: str, template: str, parameters: dict[str, str]) -> tuple[dict, float]:
    """Submit a Workflow of `template` with `parameters` and wait for its end: (the Workflow, the
    seconds from submission to its end). The first pod pulls the step image, hence the deadline.
    Its pods ran on the real node `node`."""
    spec = {
        "workflowTemplateRef": {"name": template},
        "arguments": {"parameters": [{"name": name, "value": value} for name, value in parameters.items()]},
    }
    began = time.monotonic()
    name = create_workflow(argo, spec, template)
    workflow = argo.wait_done(name, timeout=600)
    took = time.monotonic() - began
    assert {pod["spec"]["nodeName"] for pod in argo.pods(name)} == {node}
    return workflow, took


def step(workflow: dict, template: str) -> dict:
    """The one pod node of `template` in the Workflow (the retry strategy made no second attempt)."""
    (node,) = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod" and n["templateName"] == template]
    return node


def outputs(node: dict) -> dict[str, str]:
    return {parameter["name"]: parameter["value"] for parameter in node["outputs"]["parameters"]}


def report(capsys: pytest.CaptureFixture[str], what: str, workflow: dict, took: float) -> None:
    with capsys.disabled():  # the wall times are a result: shown without -s too
        print(f"\n{what}: {workflow['status']['phase']} {took:.1f} s after submission; {latencies(workflow)}")


def test_pin_and_rollback_run_on_the_real_controller(
    pipeline: ArgoWorkflows,
    real_cluster: RealNodes,
    git_remote: tuple[SeededRemote, str],
    steps_image: str,
    images: Images,
    capsys: pytest.CaptureFixture[str],
) -> None:
    remote, url = git_remote
    seeded_file = remote.show(PIN_FILE)
    common = {"git-url": url, "steps-image": steps_image, "environment": "dev"}
    node = real_cluster.nodes[0].name

    def pin(image: str) -> tuple[dict, float]:
        parameters = {**common, "image": image, "tag": images.tag, "source-commit": images.source_commit}
        return submit(pipeline, node, "pin", parameters)

    # A signed image: pinned on main, the file's header kept.
    workflow, took = pin(images.signed)
    report(capsys, "pin (signed)", workflow, took)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    pinned = outputs(step(workflow, "pin"))["commit"]
    assert remote.first_parents() == [pinned, remote.seed]
    repository, digest = images.signed.split("@")
    assert remote.subject(pinned) == f"pin dev to {digest}"
    assert remote.changed_files(pinned) == [PIN_FILE]
    header = "".join(line + "\n" for line in seeded_file.splitlines() if line.startswith("#"))
    assert header.count("\n") >= 2
    assert remote.show(PIN_FILE) + "\n" == (
        f"{header}image:\n  repository: {repository}\n  digest: {digest}\n"
        f"  tag: {images.tag}\n  sourceCommit: {images.source_commit}\n"
    )

    # An image the key did not sign: the step refuses it, nothing is pushed.
    refs = remote.refs()
    workflow, took = pin(images.unsigned)
    report(capsys, "pin (unsigned)", workflow, took)
    assert workflow["status"]["phase"] == "Failed"
    refused = step(workflow, "pin")
    assert (refused["phase"], refused["message"]) == ("Failed", f"Error (exit code {REFUSED})")
    (pod,) = pipeline.pods(workflow["metadata"]["name"])
    log = pipeline.plane.kubectl("logs", "-n", pipeline.namespace, pod["metadata"]["name"], "-c", "main").stdout
    assert f"cosign verify refused {images.unsigned}" in log, log
    assert remote.refs() == refs

    # Rollback: a revert of the pin commit, dev back to the seeded pin.
    workflow, took = submit(pipeline, node, "rollback", common)
    report(capsys, "rollback", workflow, took)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
    revert = outputs(step(workflow, "rollback"))["commit"]
    assert remote.first_parents() == [revert, pinned, remote.seed]
    assert remote.subject(revert) == f'Revert "{remote.subject(pinned)}"'
    assert remote.changed_files(revert) == [PIN_FILE]
    assert remote.show(PIN_FILE) == seeded_file
