"""The deploy half of the GitOps loop with the real Argo CD (tools/cluster/argocd.py) on the real
node: bootstrap/argocd's ApplicationSet reads a bare git remote cloned from this repository, and
each environment runs what its folder pins. The tests are the loop's steps, in order, on one
remote and one Argo CD (each step starts from the state the previous one left):
operator commit → ApplicationSet → pin dev → merge a promotion to staging → prod through
argocd-server's sync API → revert dev's pin → selfHeal. Pin, promotion branch and revert are the
pipeline's own commands (`python3 -m pipeline pin|promote|rollback`, as its pods run them): the pin
verifies a real cosign signature, the promotion reads the source environment's Deployment on the
real node. Each step prints its latency."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.container.podman import operator_secrets
from tests.realnode import database
from tests.realnode.environments import RESTRICTED, rendered_for
from tests.realnode.pods import get
from tests.realnode.sync import presync_hooks
from tests.support.process_tier import wait_until
from tests.support.registry import cosign_sign
from tests.support.tiers import skip_or_fail
from tools.cluster import argocd
from tools.cluster.realnode import RealNodes

from .deploys import DEPLOYMENT, ENVIRONMENTS, TIMEOUT, Deploys, placed_values, running, wait_running, wait_synced
from .remote import Remote, with_header
from .steps_cli import python_ready, steps

pytestmark = pytest.mark.gitops

APPLICATIONS = {f"catalog-{environment}" for environment in ENVIRONMENTS}


@dataclass
class Loop(Deploys):
    remote: Remote
    first: str  # the image every environment pins at first (`repository@digest`)
    second: str  # the next build, signed with the platform's key
    public_key: Path  # the platform's cosign key, as the pin step verifies with it
    home: Path  # the steps' HOME
    latencies: dict[str, float] = field(default_factory=dict)
    commits: dict[str, str] = field(default_factory=dict)

    def timed(self, step: str, started: float) -> None:
        self.latencies[step] = round(time.monotonic() - started, 1)
        print(f"\n{step}: {self.latencies[step]} s")

    def pipeline(self, *args: str) -> str:
        """`python3 -m pipeline ARGS` against this loop's remote and cluster: what it printed."""
        done = steps(*args, "--remote", self.remote.url, home=self.home, kubeconfig=self.plane.kubeconfig)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def _operator_files(remote: Remote, image: str) -> dict[str, str]:
    """Every environment's values.yaml with this cluster's placement, and the first build pinned."""
    repository, digest = image.split("@")
    files = placed_values(remote)
    for environment in ENVIRONMENTS:
        image_path = f"environments/{environment}/image.yaml"
        pinned = yaml.safe_load(remote.read(image_path))
        pinned["image"] |= {"repository": repository, "digest": digest}
        files[image_path] = with_header(remote.read(image_path), pinned)
    return files


@pytest.fixture(scope="module")
def loop(
    real_cluster: RealNodes, node_image: str, second_image: str, postgresql_image: str, cosign_keys, tmp_path_factory
) -> Iterator[Loop]:
    unmet = [*argocd.unmet_prerequisites(), *filter(None, [python_ready()])]
    if unmet:
        skip_or_fail(f"gitops tier needs {'; '.join(unmet)}")
    plane = real_cluster.plane
    assert plane is not None
    remote = Remote(tmp_path_factory.mktemp("gitops"))
    namespaces = [f"catalog-{environment}" for environment in ENVIRONMENTS]
    cd = argocd.ArgoCD(plane)
    try:
        # What the namespaces role and an operator make before the first sync: the namespaces,
        # and where an environment uses PostgreSQL, its database and Secret (never in git).
        labels = {**RESTRICTED, "app.kubernetes.io/managed-by": "catalog-platform"}
        plane.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": labels}}
                     for n in namespaces])  # fmt: skip
        for environment, namespace in zip(ENVIRONMENTS, namespaces, strict=True):
            if not operator_secrets(environment, ""):
                continue  # SQLite: the chart makes its own Secret
            db = database.start(plane, namespace, postgresql_image)
            plane.apply([
                {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "stringData": data,
                 "metadata": {"name": name, "namespace": namespace}}
                for name, data in operator_secrets(environment, db.url).items()
            ])  # fmt: skip
        commit = remote.commit(
            "environments: this cluster's node; the first build pinned", _operator_files(remote, node_image)
        )
        started = time.monotonic()
        cd.start()
        print(f"\nArgo CD up in {time.monotonic() - started:.1f} s")
        private_key, public_key = cosign_keys
        cosign_sign(second_image, private_key)
        home = tmp_path_factory.mktemp("steps-home")
        result = Loop(plane, real_cluster.nodes[0].name, cd, remote, node_image, second_image, public_key, home)
        result.commits["operator"] = commit
        yield result
        print(f"\nlatencies: {json.dumps(result.latencies)}")
    finally:
        survivors = cd.stop()
        plane.kubectl("delete", "namespace", *namespaces, "--ignore-not-found", "--wait=false", check=False)
        assert not survivors, f"Argo CD processes survived: {survivors}"
        left = plane.kubectl("get", "namespace", argocd.NAMESPACE, check=False)
        assert left.returncode != 0, f"Argo CD's namespace outlived it: {left.stdout}"


# -- what a test waits for ----------------------------------------------------------------------
def deployed(loop: Loop, environment: str, revision: str, image: str, step: str, started: float) -> dict:
    """The Application once Synced at `revision` and its Deployment running `image` Ready; both
    latencies from `started` are recorded as `step`."""
    app = wait_synced(loop, environment, revision)
    loop.timed(f"{step} -> {environment} Synced", started)
    wait_running(loop, environment, image)
    loop.timed(f"{step} -> {environment} Ready", started)
    return app


def history(app: dict) -> list[str]:
    return [entry["revision"] for entry in app["status"].get("history", [])]


def image_pin(loop: Loop, environment: str) -> str:
    pinned = yaml.safe_load(loop.remote.bare_git("show", f"main:environments/{environment}/image.yaml"))["image"]
    return f"{pinned['repository']}@{pinned['digest']}"


# -- the loop ------------------------------------------------------------------------------------
def test_the_applicationset_makes_one_application_per_environment(loop: Loop):
    started = time.monotonic()
    loop.cd.apply_bootstrap(loop.remote.url)
    wait_until(
        lambda: {a["metadata"]["name"] for a in loop.cd.applications()} == APPLICATIONS, 120, "3 apps", interval=0.5
    )
    loop.timed("ApplicationSet applied -> 3 Applications", started)

    apps = {a["metadata"]["name"]: a["spec"] for a in loop.cd.applications()}
    assert apps.keys() == APPLICATIONS
    for environment in ENVIRONMENTS:
        spec = apps[f"catalog-{environment}"]
        assert spec["source"]["repoURL"] == loop.remote.url
        assert spec["source"]["helm"]["valueFiles"] == [
            f"../../../environments/{environment}/values.yaml",
            f"../../../environments/{environment}/image.yaml",
        ]
        assert spec["destination"]["namespace"] == f"catalog-{environment}"
    policies = {name: spec["syncPolicy"].get("automated") for name, spec in apps.items()}
    assert policies == {
        "catalog-dev": {"prune": True, "selfHeal": True},
        "catalog-staging": {"prune": False, "selfHeal": False},
        "catalog-prod": None,
    }


def test_dev_and_staging_sync_the_operators_commit_by_themselves_and_prod_waits(loop: Loop):
    started = time.monotonic()
    for environment in ("dev", "staging"):
        deployed(loop, environment, loop.commits["operator"], loop.first, "Applications made", started)

    prod = loop.application("prod")["status"]
    assert prod["sync"]["status"] == "OutOfSync"
    assert prod["sync"]["revision"] == loop.commits["operator"]
    assert "operationState" not in prod
    assert loop.plane.kubectl("get", "deployment", DEPLOYMENT, "-n", "catalog-prod", check=False).returncode != 0


def test_a_pushed_pin_runs_on_dev_at_that_revision(loop: Loop):
    source = loop.remote.head()
    started = time.monotonic()
    commit = loop.pipeline(
        "pin", "--env", "dev", "--image", loop.second, "--tag", source[:12], "--source-commit", source,
        "--public-key", str(loop.public_key),
    )  # fmt: skip
    assert commit == loop.remote.head()
    loop.commits["pin"] = commit
    app = deployed(loop, "dev", commit, loop.second, "pin pushed", started)

    assert image_pin(loop, "dev") == loop.second
    assert history(app) == [loop.commits["operator"], commit]
    assert running(loop, "staging", loop.first)  # staging keeps its own pin


def test_a_merged_promotion_runs_on_staging_and_prod_stays_out_of_sync(loop: Loop):
    branch = loop.pipeline("promote", "--from", "dev", "--to", "staging")
    assert branch == f"promote/staging/{loop.second.split(':')[-1][:12]}"
    started = time.monotonic()
    merge = loop.remote.merge(branch)
    loop.commits["promote-staging"] = merge
    app = deployed(loop, "staging", merge, loop.second, "promotion merged", started)

    assert image_pin(loop, "staging") == loop.second
    assert history(app) == [loop.commits["operator"], merge]
    prod = loop.application("prod")["status"]
    assert (prod["sync"]["status"], "operationState" in prod) == ("OutOfSync", False)


def test_prod_syncs_through_argocd_servers_sync_api(loop: Loop):
    merge = loop.remote.merge(loop.pipeline("promote", "--from", "staging", "--to", "prod"))
    # The controller has seen the merge (its revision) and still does not sync prod by itself.
    wait_until(
        lambda: loop.application("prod")["status"]["sync"].get("revision") == merge,
        TIMEOUT,
        "prod compared",
        interval=1,
    )
    prod = loop.application("prod")["status"]
    assert (prod["sync"]["status"], "operationState" in prod) == ("OutOfSync", False)

    started = time.monotonic()
    session = argocd.Session(loop.cd)
    answer = session.post(
        "/api/v1/applications/catalog-prod/sync",
        {"revision": "HEAD", "prune": False, "dryRun": False, "strategy": {"hook": {}}},
    )
    app = deployed(loop, "prod", merge, loop.second, "sync API called", started)

    assert answer["operation"]["initiatedBy"]["username"] == "admin"
    assert app["status"]["operationState"]["operation"]["initiatedBy"]["username"] == "admin"
    assert history(app) == [merge]
    tree = session.get("/api/v1/applications/catalog-prod/resource-tree")
    (deployment,) = [n for n in tree["nodes"] if n["kind"] == "Deployment"]
    assert deployment["health"]["status"] == "Healthy"  # the real node ran its pods Ready
    # PostgreSQL's migration (its Job, ServiceAccount and NetworkPolicy) ran as the sync's PreSync hooks.
    hooks = presync_hooks(rendered_for("prod", loop.second, "catalog-prod").documents)
    results = app["status"]["operationState"]["syncResult"]["resources"]
    assert sorted((r["kind"], r["name"], r["hookPhase"]) for r in results if r.get("hookType") == "PreSync") == sorted(
        (hook["kind"], hook["metadata"]["name"], "Succeeded") for hook in hooks
    )
    assert "Job" in {hook["kind"] for hook in hooks}


def test_reverting_the_pin_runs_the_previous_digest_on_dev(loop: Loop):
    started = time.monotonic()
    revert = loop.pipeline("rollback", "--env", "dev")
    assert revert == loop.remote.head()
    assert loop.remote.bare_git("log", "-1", "--format=%B", revert).endswith(
        f"This reverts commit {loop.commits['pin']}."
    )
    app = deployed(loop, "dev", revert, loop.first, "revert pushed", started)

    assert image_pin(loop, "dev") == loop.first
    # The promotions after the pin did not touch dev's folder: dev synced three commits.
    assert history(app) == [loop.commits["operator"], loop.commits["pin"], revert]
    assert running(loop, "staging", loop.second)  # the promoted environments keep their pin


def test_self_heal_reverts_a_drifted_image_on_dev(loop: Loop):
    before = loop.application("dev")
    generation = get(loop.plane, "deployment", DEPLOYMENT, "catalog-dev")["metadata"]["generation"]

    def image() -> str:
        (container,) = get(loop.plane, "deployment", DEPLOYMENT, "catalog-dev")["spec"]["template"]["spec"][
            "containers"
        ]
        return container["image"]

    started = time.monotonic()
    loop.plane.kubectl("set", "image", f"deployment/{DEPLOYMENT}", f"catalog={loop.second}", "-n", "catalog-dev")
    wait_until(lambda: image() == loop.first, TIMEOUT, "drift reverted", interval=0.2)
    loop.timed("kubectl set image -> reverted by selfHeal", started)
    wait_running(loop, "dev", loop.first)
    loop.timed("kubectl set image -> dev Ready again", started)

    # The drift was written (one generation) and undone (another) by an automated sync of the same commit.
    assert get(loop.plane, "deployment", DEPLOYMENT, "catalog-dev")["metadata"]["generation"] >= generation + 2
    app = loop.application("dev")
    operation = app["status"]["operationState"]
    assert operation["startedAt"] > before["status"]["operationState"]["startedAt"]
    assert operation["operation"]["initiatedBy"] == {"automated": True}
    assert (operation["phase"], operation["syncResult"]["revision"]) == ("Succeeded", loop.remote.head())
    # selfHeal syncs only what drifted: the Deployment, and such a partial sync is no history entry.
    assert operation["operation"]["sync"]["resources"] == [{"group": "apps", "kind": "Deployment", "name": DEPLOYMENT}]
    assert app["status"]["sync"]["status"] == "Synced"
    assert history(app) == history(before)
