"""The `ci` pipeline as the platform runs it: a push to main reaches the git server's post-receive
hook (argo-workflows/events/post-receive), the hook sends argo-server the push event, the
WorkflowEventBinding ci-on-push submits WorkflowTemplate ci, and the real controller runs
checkout → test → build → scan → sign → pin with every pod on the real node; then Argo CD, reading
the same remote, runs the pinned digest on dev. The templates are applied exactly as
argo-workflows/ has them; the test gives only the parameters an operator gives.

Everything the pods reach listens on the node's bridge address: `git daemon` serving a bare
clone of this repository (with the hook), a registry holding the step image, the image's base and
PostgreSQL's image for the test step's sidecar, a package index over HTTPS holding the wheels the
test step and the build install (its CA is the Secret `ca-bundle`, as where outgoing HTTPS is
re-signed), and the artifact store the controller is configured with for the reports.

Trivy's real advisory database cannot be downloaded here: the scan downloads the one the test
writes (tests.support.trivydb) from the registry, as an air-gapped cluster mirrors the real one.
It holds a HIGH finding the image really has, which the pushed commit waives in the allow-list (the
scan passes and reports it as waived), a MEDIUM one it has (below the gate) and a CRITICAL one for
a version it does not have; the gate's refusals are proven by test_steps_scan.py, through the same
`pipeline scan` command."""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.container.podman import PODMAN_ENV, push_image
from tests.gitops.deploys import Deploys, placed_values, wait_running, wait_synced
from tests.gitops.pipeline_services import FileServer, wheel_index
from tests.gitops.remote import GitDaemon, Remote
from tests.gitops.workflows import latencies
from tests.realnode.environments import RESTRICTED
from tests.support.registry import cosign_verify
from tests.support.tiers import skip_or_fail
from tests.support.trivydb import (
    OPENSSL,
    OPENSSL_FINDINGS,
    PYTHON_MEDIUM,
    SANIC_OLD,
    allow_list,
    database_layout,
    reported,
    waiver,
    write_database,
)
from tools.cluster import argocd, processes
from tools.cluster.argo_workflows import ArgoWorkflows
from tools.cluster.realnode import RealNodes
from tools.cluster.registry import LocalRegistry, crane, push_layout
from tools.cluster.toolbox import REPO_ROOT, run

pytestmark = pytest.mark.gitops

PIPELINE = REPO_ROOT / "argo-workflows"
TEMPLATES = ["checkout", "test", "build", "scan", "sign", "pin", "ci"]
HOOK = PIPELINE / "events" / "post-receive"
PIN_FILE = "environments/dev/image.yaml"
DEV_NAMESPACE = "catalog-dev"
ALLOW_LIST = "apps/catalog/.trivyignore.yaml"
# The test step's selection here: the PostgreSQL tier, which needs the sidecar. The unit tier runs
# on the host in the same suite; in a pod under the suite's load both took 19 min.
TEST_MARKERS = "pg"
ARTIFACT_USER, ARTIFACT_PASSWORD = "argo", "test-only-artifacts"
COSIGN_PASSWORD = "test-only"  # tests.support.registry signs with this password


@pytest.fixture(scope="module")
def services(real_cluster: RealNodes) -> Iterator[dict[str, FileServer]]:
    """The package index (HTTPS) and the artifact store, on the bridge address."""
    assert real_cluster.plane is not None
    began = time.monotonic()
    index_root = wheel_index()
    print(f"\nwheel index {index_root.name} ready in {time.monotonic() - began:.1f} s")
    address = real_cluster.nodes[0].gateway
    state = real_cluster.state_dir / "pipeline-services"
    artifacts = state / "artifacts"
    artifacts.mkdir(parents=True)
    index = FileServer("wheel-index", index_root, address, state / "index")
    store = FileServer("artifact-store", artifacts, address, state / "store")
    try:
        index.start_tls(real_cluster.plane.pki)
        store.start("--writable", "--credentials", f"{ARTIFACT_USER}:{ARTIFACT_PASSWORD}")
        yield {"index": index, "store": store}
    finally:
        pids = index.pids + store.pids
        index.stop()
        store.stop()
        shutil.rmtree(state)
        assert not [pid for pid in pids if processes.alive(pid)], "a pipeline service outlived its fixture"


@pytest.fixture(scope="module")
def images(bridge_registry: LocalRegistry, postgresql_image: str, tmp_path_factory) -> dict[str, str]:
    """What the pods pull besides the step image, in the bridge registry by digest: the catalog
    image's base (the build's FROM), PostgreSQL (the test step's sidecar); and the Trivy database."""
    began = time.monotonic()
    base = run([str(REPO_ROOT / "apps" / "catalog" / "image" / "base.sh")], env=PODMAN_ENV).stdout.splitlines()[-1]
    base_image = push_image(base, f"{bridge_registry.host}/catalog-base:latest")
    postgres = f"{bridge_registry.host}/postgresql:15"
    crane("copy", postgresql_image, postgres)
    scratch = tmp_path_factory.mktemp("trivy-db")
    trivy_db = f"{bridge_registry.host}/trivy-db:2"
    database = write_database(scratch / "cache", only={OPENSSL, PYTHON_MEDIUM, SANIC_OLD})
    push_layout(database_layout(database, scratch / "layout"), trivy_db)
    print(f"\nbase, PostgreSQL and Trivy database in the bridge registry in {time.monotonic() - began:.1f} s")
    return {
        "base-image": base_image,
        "postgres-image": f"{postgres.rsplit(':', 1)[0]}@{crane('digest', postgres)}",
        "trivy-db-repository": trivy_db,
    }


@pytest.fixture(scope="module")
def pipeline(argo: ArgoWorkflows, services: dict[str, FileServer], cosign_keys, real_cluster: RealNodes):
    """The templates and the event binding as argo-workflows/ has them; the Secrets the platform
    makes (the signing key, the index's CA, the artifact store's credentials); the controller's
    artifact repository."""
    assert real_cluster.plane is not None
    documents = [
        d for name in TEMPLATES for d in yaml.safe_load_all((PIPELINE / "templates" / f"{name}.yaml").read_text()) if d
    ]
    documents += [yaml.safe_load((PIPELINE / "events" / "ci-on-push.yaml").read_text())]
    key, public = cosign_keys
    secrets = {
        "cosign-key": {
            "cosign.key": key.read_text(),
            "cosign.pub": public.read_text(),
            "cosign.password": COSIGN_PASSWORD,
        },
        "ca-bundle": {"ca.crt": real_cluster.plane.pki.ca_cert.read_text()},
        "artifact-repository": {"username": ARTIFACT_USER, "password": ARTIFACT_PASSWORD},
    }
    documents += [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
        for name, data in secrets.items()
    ]
    argo.apply(documents)
    argo.configure(
        artifactRepository={
            "archiveLogs": True,
            "artifactory": {
                "repoURL": f"{services['store'].url}/argo",
                "usernameSecret": {"name": "artifact-repository", "key": "username"},
                "passwordSecret": {"name": "artifact-repository", "key": "password"},
            },
        }
    )
    return argo


@pytest.fixture
def argo_cd(real_cluster: RealNodes) -> Iterator[Deploys]:
    """Argo CD on the plane (no Application yet) and dev's namespace; both go with the test."""
    unmet = argocd.unmet_prerequisites()
    if unmet:
        skip_or_fail(f"Argo CD needs {'; '.join(unmet)}")
    plane = real_cluster.plane
    assert plane is not None
    cd = argocd.ArgoCD(plane)
    labels = {**RESTRICTED, "app.kubernetes.io/managed-by": "catalog-platform"}
    plane.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEV_NAMESPACE, "labels": labels}}])
    try:
        yield Deploys(plane, real_cluster.nodes[0].name, cd.start())
    finally:
        survivors = cd.stop()
        plane.kubectl("delete", "namespace", DEV_NAMESPACE, "--ignore-not-found", "--wait=false", check=False)
        assert not survivors, f"Argo CD processes survived: {survivors}"


@pytest.fixture
def served_remote(pipeline: ArgoWorkflows, real_cluster: RealNodes) -> Iterator[tuple[Remote, str]]:
    """A bare clone of this repository with the post-receive hook, served by `git daemon` on the
    bridge address; the hook talks to argo-server with the git hook's ServiceAccount token."""
    base = real_cluster.state_dir / "ci-remote"
    base.mkdir()
    remote = Remote(base)
    shutil.copy(HOOK, remote.bare / "hooks" / "post-receive")
    hook_env = {
        "PATH": "/usr/bin:/bin",
        "ARGO_SERVER": pipeline.server,
        "ARGO_TOKEN": pipeline.token("catalog-git-hook"),
    }
    try:
        with GitDaemon(base, real_cluster.nodes[0].gateway, env=hook_env) as daemon:
            yield remote, daemon.url(remote)
    finally:
        shutil.rmtree(base)


def workflows_of(argo: ArgoWorkflows, template: str) -> list[dict]:
    listed = argo.plane.kubectl("get", "workflows", "-n", argo.namespace, "-o", "json").stdout
    return [w for w in json.loads(listed)["items"] if w["spec"].get("workflowTemplateRef", {}).get("name") == template]


def wait_submitted(argo: ArgoWorkflows, template: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while not (found := workflows_of(argo, template)):
        assert time.monotonic() < deadline, f"no Workflow of {template} within {timeout:.0f} s"
        time.sleep(0.5)
    (workflow,) = found
    return workflow


def step_nodes(workflow: dict, task: str) -> list[dict]:
    """The node of a ci task: its Pod, or the Retry node above the pod(s) of a retrying step (its
    pods are named `<task>(0)`, `<task>(1)`...), which carries the outputs of the attempt that passed."""
    nodes = workflow["status"]["nodes"].values()
    return [n for n in nodes if n["displayName"] == task and n["type"] in ("Pod", "Retry")]


def outputs(workflow: dict, task: str) -> dict[str, str]:
    """A ci task's output parameters (the pod node whose display name is `task`)."""
    (node,) = step_nodes(workflow, task)
    return {p["name"]: p["value"] for p in node.get("outputs", {}).get("parameters", [])}


def stored(store: FileServer, entry: dict) -> Path:
    """Where the store keeps an output artifact the Artifactory driver uploaded."""
    # The driver records a full URL for outputs, only the path for a log it archived itself.
    return store.root / entry["artifactory"]["url"].removeprefix(store.url).lstrip("/")


def artifact(store: FileServer, workflow: dict, task: str, name: str) -> Path:
    """The file the Artifactory driver stored for a task's output artifact."""
    (node,) = step_nodes(workflow, task)
    (entry,) = [a for a in node["outputs"]["artifacts"] if a["name"] == name]
    return stored(store, entry)


def failed_steps(store: FileServer, workflow: dict) -> str:
    """What a failed run's assertion shows: each step that did not succeed, its message and the
    end of its log (archived by the controller in the store, which the fixture removes after)."""
    lines = [f"workflow: {workflow['status'].get('message')}"]
    for node in workflow["status"]["nodes"].values():
        if node["type"] != "Pod" or node["phase"] == "Succeeded":
            continue
        lines.append(f"--- {node['displayName']}: {node['phase']}: {node.get('message')}")
        logs = [a for a in node.get("outputs", {}).get("artifacts", []) if a["name"] == "main-logs"]
        lines += [line for entry in logs for line in stored(store, entry).read_text().splitlines()[-40:]]
    return "\n".join(lines)


def collected(source: Path) -> int:
    """How many tests the test step's selection holds in `source` (pytest --collect-only)."""
    listed = run(
        [str(REPO_ROOT / ".venv" / "bin" / "pytest"), "apps/catalog/tests", "--ignore=apps/catalog/tests/process",
         "-m", TEST_MARKERS, "-p", "no:cacheprovider", "--collect-only", "-q"],
        cwd=source,
    ).stdout  # fmt: skip
    return sum(1 for line in listed.splitlines() if "::" in line)


def test_a_push_runs_ci_on_the_real_controller_and_pins_the_signed_digest(
    pipeline: ArgoWorkflows,
    services: dict[str, FileServer],
    served_remote: tuple[Remote, str],
    images: dict[str, str],
    steps_image: str,
    bridge_registry: LocalRegistry,
    cosign_keys,
    real_cluster: RealNodes,
    argo_cd: Deploys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    remote, url = served_remote
    # The parameters an operator sets once for a cluster (the template's defaults name Docker Desktop's).
    parameters = {
        "git-url": url,
        "steps-image": steps_image,
        "registry": bridge_registry.host,
        "pip-index-url": f"{services['index'].url}/simple",
        "test-markers": TEST_MARKERS,
        **images,
    }
    ci = {d["metadata"]["name"]: d for d in yaml.safe_load_all((PIPELINE / "templates" / "ci.yaml").read_text())}["ci"]
    for declared in ci["spec"]["arguments"]["parameters"]:
        if declared["name"] in parameters:
            declared["value"] = parameters[declared["name"]]
    pipeline.apply([ci])

    # The operator's commit (each environment's values place it on the real node), then a person's
    # change: a waiver in the scan's allow-list. Both reach main in one push through the git server.
    for path, text in placed_values(remote).items():
        (remote.work / path).write_text(text)
    remote.git("commit", "--quiet", "--all", "-m", "environments: this cluster's node")
    allow_list(remote.work / ALLOW_LIST, [waiver(OPENSSL, statement="the pipeline test's waiver")])
    remote.git("add", ALLOW_LIST)
    remote.git("commit", "--quiet", "-m", "scan: waive the test database's openssl advisory")
    pushed = remote.git("rev-parse", "HEAD")
    began = time.monotonic()
    remote.git("push", url, "HEAD:main")
    workflow = wait_submitted(pipeline, "ci")
    submitted = time.monotonic() - began
    assert {p["name"]: p.get("value") for p in workflow["spec"]["arguments"]["parameters"]} == {"revision": pushed}

    name = workflow["metadata"]["name"]
    workflow = pipeline.wait_done(name, timeout=1200)
    took = time.monotonic() - began
    with capsys.disabled():  # the latencies are a result: shown without -s too
        print(f"\nci: event {submitted:.1f} s after the push; {workflow['status']['phase']} {took:.1f} s after it")
        print(latencies(workflow))
    assert workflow["status"]["phase"] == "Succeeded", failed_steps(services["store"], workflow)
    assert {pod["spec"]["nodeName"] for pod in pipeline.pods(name)} == {real_cluster.nodes[0].name}

    # The build pushed the image by digest, labelled with the commit it built.
    built = outputs(workflow, "build")
    repository, digest = built["image"].split("@")
    assert (repository, digest) == (f"{bridge_registry.host}/catalog", built["digest"])
    assert outputs(workflow, "checkout") == {"commit": pushed}
    labels = json.loads(crane("config", built["image"]))["config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == pushed
    assert crane("digest", f"{repository}:{pushed[:12]}") == digest

    # Signed with the platform's key; pinned on main on top of the pushed commit.
    assert cosign_verify(built["image"], cosign_keys[1]).returncode == 0
    head = remote.head()
    assert remote.bare_git("rev-parse", f"{head}^") == pushed
    assert remote.bare_git("diff", "--name-only", pushed, head).split() == [PIN_FILE]
    pinned = yaml.safe_load(remote.bare_git("show", f"{head}:{PIN_FILE}"))["image"]
    assert pinned == {"repository": repository, "digest": digest, "tag": built["tag"], "sourceCommit": pushed}
    # The pin's own push changed only environments/: the hook started nothing more.
    assert [w["metadata"]["name"] for w in workflows_of(pipeline, "ci")] == [name]

    # The reports, in the artifact repository. The pod ran exactly the tests the tiers hold here,
    # and each passed (CI=true in the step: a skip fails the run).
    junit = artifact(services["store"], workflow, "test", "junit")
    suite = ElementTree.parse(junit).getroot().find("testsuite")  # noqa: S314 - the pod's own pytest report
    assert suite is not None
    counts = {key: int(suite.get(key, "-1")) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": collected(remote.work), "failures": 0, "errors": 0, "skipped": 0}
    # The scan read the downloaded database and the pushed allow-list: the HIGH finding waived,
    # nothing left at or above the gate.
    assert reported(artifact(services["store"], workflow, "scan", "vulnerabilities")) == (set(), OPENSSL_FINDINGS)
    sbom = json.loads(artifact(services["store"], workflow, "scan", "sbom").read_text())
    assert "cryptography" in {c["name"] for c in sbom["components"]}

    # Argo CD, reading the same remote, runs the pinned digest on dev: Synced at the pin commit,
    # its pods Ready on the real node with that image.
    started = time.monotonic()
    argo_cd.cd.apply_bootstrap(remote.url)
    wait_synced(argo_cd, "dev", head)
    wait_running(argo_cd, "dev", built["image"])
    with capsys.disabled():
        print(f"Argo CD: ApplicationSet applied -> dev runs the pinned digest in {time.monotonic() - started:.1f} s")
