"""`pipeline promote` against a bare git remote and a real control plane: the Deployment `catalog`
in `catalog-<env>` is read with kubectl (kwok's nodes make its pods ready, so it becomes Available,
or stays Pending where no node matches)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gitops.steps_cli import SeededRemote, assert_refused, random_digest, steps
from tests.support.process_tier import wait_until
from tools.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.gitops

REPOSITORY = "registry.test:5000/catalog"


@pytest.fixture(scope="module")
def catalog_namespaces(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """catalog-dev and catalog-staging, the names the promote step reads (prod has none: nothing runs there)."""
    names = ["catalog-dev", "catalog-staging"]
    control_plane.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in names])
    yield control_plane
    for name in names:
        control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def run_catalog(plane: ControlPlane, env: str, image: str | None, *, schedulable: bool = True) -> None:
    """Replace deployment/catalog in catalog-<env> by one running `image` (None: none at all); wait
    until it is Available, or, unschedulable, until its one pod is counted and unavailable."""
    namespace = f"catalog-{env}"
    plane.kubectl("delete", "deployment", "catalog", "-n", namespace, "--ignore-not-found", "--wait=true")
    if image is None:
        return
    pod: dict[str, Any] = {"containers": [{"name": "catalog", "image": image}]}
    if not schedulable:
        pod["nodeSelector"] = {"catalog-platform/no-such-node": "true"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "catalog", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "catalog"}},
            "template": {"metadata": {"labels": {"app": "catalog"}}, "spec": pod},
        },
    }
    plane.apply([deployment])
    if schedulable:
        plane.kubectl("rollout", "status", "deployment/catalog", "-n", namespace, "--timeout=120s")
        return

    def counted() -> bool:
        status = json.loads(plane.kubectl("get", "deployment", "catalog", "-n", namespace, "-o", "json").stdout)
        return status.get("status", {}).get("unavailableReplicas") == 1

    wait_until(counted, 60, f"deployment/catalog in {namespace} counting its pending pod", interval=0.5)


def test_promote_pushes_one_branch_with_one_changed_file_and_git_merge_promotes(
    catalog_namespaces: ControlPlane, seeded_remote: SeededRemote, steps_home: Path
) -> None:
    digest = random_digest()
    main = seeded_remote.commit_pin("dev", digest, tag="1.5.0", repository=REPOSITORY)
    run_catalog(catalog_namespaces, "dev", f"{REPOSITORY}@{digest}")
    staging_before = seeded_remote.show("environments/staging/image.yaml")

    done = steps("promote", "--remote", seeded_remote.url, "--from", "dev", "--to", "staging", home=steps_home)

    assert done.returncode == 0, done.stderr
    branch = f"promote/staging/{digest[7:19]}"
    assert done.stdout == f"{branch}\n"
    assert seeded_remote.head() == main
    tip = seeded_remote.head(branch)
    assert seeded_remote.first_parents(branch) == [tip, *seeded_remote.first_parents()]
    assert seeded_remote.changed_files(tip) == ["environments/staging/image.yaml"]
    assert seeded_remote.pin("staging", branch) == seeded_remote.pin("dev")
    promoted = seeded_remote.show("environments/staging/image.yaml", branch)
    comments = [line for line in staging_before.splitlines() if line.startswith("#")]
    assert [line for line in promoted.splitlines() if line.startswith("#")] == comments

    merged = seeded_remote.merge(branch)

    assert seeded_remote.changed_files(merged) == ["environments/staging/image.yaml"]
    assert seeded_remote.pin("staging") == seeded_remote.pin("dev")
    assert seeded_remote.pin("staging")["digest"] == digest


@pytest.mark.parametrize(
    ("source", "target", "force", "running", "code", "says"),
    [
        pytest.param(
            "dev", "prod", False, "pinned", 2, "dev → prod skips staging; promote in order", id="skip-refused"
        ),
        pytest.param("dev", "prod", True, "pinned", 0, "", id="skip-forced"),
        pytest.param("dev", "staging", False, "other", 1, "runs registry.test:5000/catalog@sha256:", id="other-digest"),
        pytest.param("dev", "staging", True, "other", 0, "", id="other-digest-forced"),
        pytest.param(
            "dev",
            "staging",
            False,
            "pending",
            1,
            "but is not healthy (1 wanted, 1 updated, 0 available)",
            id="not-available-yet",
        ),
        pytest.param(
            "dev", "staging", False, None, 1, "cannot read deployment/catalog in catalog-dev", id="no-deployment"
        ),
        pytest.param("staging", "dev", True, "pinned", 2, "dev does not come after staging", id="backwards"),
    ],
)
def test_promote_refuses_unless_in_order_and_healthy(
    source: str,
    target: str,
    force: bool,
    running: str | None,
    code: int,
    says: str,
    catalog_namespaces: ControlPlane,
    seeded_remote: SeededRemote,
    steps_home: Path,
) -> None:
    digest = random_digest()
    seeded_remote.commit_pin(source, digest, repository=REPOSITORY)
    image = {"pinned": f"{REPOSITORY}@{digest}", "pending": f"{REPOSITORY}@{digest}", None: None}.get(
        running, f"{REPOSITORY}@{random_digest()}"
    )
    run_catalog(catalog_namespaces, source, image, schedulable=running != "pending")
    refs = seeded_remote.refs()

    done = steps(
        "promote", "--remote", seeded_remote.url, "--from", source, "--to", target, *(["--force"] if force else []),
        home=steps_home,
    )  # fmt: skip

    if code:
        assert_refused(done, code, says)
        assert seeded_remote.refs() == refs
    else:
        assert done.returncode == 0, done.stderr
        branch = f"promote/{target}/{digest[7:19]}"
        assert done.stdout == f"{branch}\n"
        assert seeded_remote.pin(target, branch) == seeded_remote.pin(source)
        assert seeded_remote.changed_files(seeded_remote.head(branch)) == [f"environments/{target}/image.yaml"]
