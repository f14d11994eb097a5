"""The Ansible tier: a control plane of its own (no CRDs preinstalled, as a fresh Docker Desktop
cluster has none), on which `site.yml -i inventories/ci` converges once per session.

Tests that need the converged platform take `converged`; the teardown test takes it down and
marks it so, and the next test that needs it converges again, so no test depends on file order."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ansible.playbook import PlaybookRun, run_playbook
from tests.support.tiers import skip_or_fail
from tools.cluster.controlplane import ControlPlane
from tools.cluster.toolbox import CONTROL_PLANE_BINARIES, missing, run, tool
from tools.cluster.upstream import assemble

# Cluster-scoped kinds site.yml may create; teardown must leave each exactly as it found it.
CLUSTER_SCOPED = (
    "namespaces",
    "clusterroles",
    "clusterrolebindings",
    "ingressclasses",
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "priorityclasses",
    "storageclasses",
)


@dataclass
class Platform:
    plane: ControlPlane
    runs: list[PlaybookRun] = field(default_factory=list)
    converged: bool = False

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def kubectl(self, *args: str, check: bool = True, input: str | None = None):
        return self.plane.kubectl(*args, check=check, input=input)

    def playbook(self, playbook: str, *args: str, kubeconfig: Path | None = None) -> PlaybookRun:
        run = run_playbook(playbook, *args, kubeconfig=kubeconfig or self.kubeconfig)
        self.runs.append(run)
        return run

    def converge(self) -> PlaybookRun:
        run = self.playbook("site.yml")
        assert run.returncode == 0, run.explain()
        self.converged = True
        return run

    def helm_releases(self) -> list[dict]:
        listed = run([tool("helm"), "list", "--all-namespaces", "--all", "-o", "json"], env=self._env())
        return json.loads(listed.stdout)

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def get_json(self, *args: str) -> dict:
        """`kubectl get <args> -o json`, parsed; raises with kubectl's output if it fails."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def names(self, kind: str) -> set[str]:
        return {item["metadata"]["name"] for item in self.get_json(kind)["items"]}

    def cluster_snapshot(self) -> dict[str, set[str]]:
        return {kind: self.names(kind) for kind in CLUSTER_SCOPED}


@pytest.fixture(scope="session")
def platform():
    """A dedicated control plane and the upstream artifacts the ci inventory installs."""
    absent = missing([*CONTROL_PLANE_BINARIES, "helm", "kustomize", "cosign"])
    if absent:
        skip_or_fail(f"ansible tier needs `make tools` (.tools/bin lacks {', '.join(absent)})")
    if not (tool("helm").parent.parent / "helm-plugins").is_dir():
        skip_or_fail("ansible tier needs the helm-diff plugin from `make tools` (.tools/helm-plugins)")
    assemble()
    plane = ControlPlane(install_crds=False).start()
    try:
        plane.apply(_static_volumes())
        yield Platform(plane)
    finally:
        survivors = plane.stop()
        assert not survivors, f"control-plane processes survived the session: {survivors}"


def _static_volumes(count: int = 12, size: str = "50Gi") -> list[dict]:
    """Volumes for the default class, as Docker Desktop's hostpath provisioner would make them:
    the control plane's own binder then binds the platform's claims (the registry's, Loki's), so
    their pods schedule. Enough for two converges: teardown leaves a bound volume Released."""
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"kwok-volume-{index}"},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "standard",
                "hostPath": {"path": f"/var/lib/kwok-volumes/{index}"},
            },
        }
        for index in range(count)
    ]


@pytest.fixture(scope="session")
def before_site(platform) -> dict[str, set[str]]:
    """The cluster-scoped objects present before site.yml first ran (a user's own included)."""
    assert not platform.runs, "before_site must be taken before any playbook runs"
    return platform.cluster_snapshot()


@pytest.fixture
def converged(platform, before_site) -> Platform:
    """The platform after `ansible-playbook site.yml -i inventories/ci` (converged once, again
    only after a teardown)."""
    if not platform.converged:
        first = platform.converge()
        print(f"\nsite.yml converged in {first.seconds} s ({first.total('changed')} changed tasks)")
    return platform


@pytest.fixture
def foreign_kubeconfig(platform, tmp_path) -> Path:
    """The same cluster under a context name the ci inventory does not allow."""
    foreign = tmp_path / "kubeconfig"
    shutil.copyfile(platform.kubeconfig, foreign)
    subprocess_env = {**os.environ, "KUBECONFIG": str(foreign)}
    kubectl = str(tool("kubectl"))
    current = run([kubectl, "config", "current-context"], env=subprocess_env).stdout.strip()
    run([kubectl, "config", "rename-context", current, "someone-elses-cluster"], env=subprocess_env)
    return foreign
