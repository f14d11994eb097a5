"""The Ansible tier: a control plane of its own (no CRDs preinstalled, as a fresh Docker Desktop
cluster has none), on which the Molecule scenario (molecule/default) runs once per session:
`molecule test` converges `site.yml -i inventories/ci`, converges again (idempotence) and verifies.

Tests that need the converged platform take `converged`; the teardown test takes it down and
marks it so, and the next test that needs it converges again (`molecule converge`), so no test
depends on file order. The teardown test comes last in its file, so a full run converges once."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.ansible.playbook import MoleculeRun, PlaybookRun, run_molecule, run_playbook
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
    workdir: Path
    runs: list[PlaybookRun | MoleculeRun] = field(default_factory=list)
    converged: bool = False
    # The session's `molecule test`: its converge and idempotence runs, read per role by test_site.
    molecule: MoleculeRun | None = None
    failed: str = ""

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    def kubectl(self, *args: str, check: bool = True, input: str | None = None):
        return self.plane.kubectl(*args, check=check, input=input)

    def playbook(self, playbook: str, *args: str, kubeconfig: Path | None = None) -> PlaybookRun:
        run = run_playbook(playbook, *args, kubeconfig=kubeconfig or self.kubeconfig)
        self.runs.append(run)
        return run

    def converge(self) -> MoleculeRun:
        """`molecule test` the first time; `molecule converge` after a teardown. Fails unless
        site.yml converged (and, once it failed, at once for every later test); an idempotence or
        verify failure is left to the tests that read it."""
        assert not self.failed, self.failed
        run = run_molecule("converge" if self.molecule else "test", kubeconfig=self.kubeconfig, workdir=self.workdir)
        self.runs.append(run)
        self.molecule = self.molecule or run
        if not run.converges or run.converges[0].returncode != 0:
            self.failed = "site.yml did not converge:\n" + "\n".join(step.explain() for step in run.steps)
            self.failed += "\n" + run.explain()
        assert not self.failed, self.failed
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
def platform(tmp_path_factory):
    """A dedicated control plane and the upstream artifacts the ci inventory installs."""
    absent = missing([*CONTROL_PLANE_BINARIES, "helm", "kustomize", "cosign"])
    if absent:
        skip_or_fail(f"ansible tier needs `make tools` (.tools/bin lacks {', '.join(absent)})")
    if not (tool("helm").parent.parent / "helm-plugins").is_dir():
        skip_or_fail("ansible tier needs the helm-diff plugin from `make tools` (.tools/helm-plugins)")
    assemble()
    plane = ControlPlane(install_crds=False).start()
    try:
        yield Platform(plane, workdir=tmp_path_factory.mktemp("molecule"))
    finally:
        survivors = plane.stop()
        assert not survivors, f"control-plane processes survived the session: {survivors}"


@pytest.fixture(scope="session")
def before_site(platform) -> dict[str, set[str]]:
    """The cluster-scoped objects present before site.yml first ran (a user's own included)."""
    assert not platform.runs, "before_site must be taken before any playbook runs"
    return platform.cluster_snapshot()


@pytest.fixture
def converged(platform, before_site) -> Platform:
    """The platform after `ansible-playbook site.yml -i inventories/ci`, run by Molecule (converged
    once, again only after a teardown)."""
    if not platform.converged:
        run = platform.converge()
        changed = [step.total("changed") for step in run.converges]
        print(f"\nmolecule converged in {run.seconds} s (changed tasks per site.yml run: {changed})")
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
