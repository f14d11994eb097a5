"""The Ansible tree without a cluster: ansible-lint's production profile, a syntax check of every
playbook with each inventory, the Molecule scenario as Molecule reads it, and every role's
defaults typed in its argument_specs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ansible.playbook import ANSIBLE_BIN
from tools.cluster.toolbox import REPO_ROOT

pytestmark = pytest.mark.static

ROLES = sorted(p.name for p in (REPO_ROOT / "roles").iterdir() if p.is_dir())
PLAYBOOKS = ["site.yml", "playbooks/teardown.yml", "playbooks/verify.yml"]
INVENTORIES = sorted(p.name for p in (REPO_ROOT / "inventories").iterdir())


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def test_ansible_lint_production_profile_is_clean():
    linted = _run(ANSIBLE_BIN / "ansible-lint", "--profile", "production", "--offline", "--nocolor")
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize("inventory", INVENTORIES)
@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook, inventory):
    checked = _run(ANSIBLE_BIN / "ansible-playbook", "--syntax-check", "-i", f"inventories/{inventory}", playbook)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_molecule_scenario_validates_and_its_converge_playbook_parses(tmp_path):
    # Molecule checks molecule.yml against its schema first; no Galaxy, no cluster needed.
    env = {**os.environ, "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path), "NO_COLOR": "1"}
    env["PATH"] = f"{ANSIBLE_BIN}{os.pathsep}{env['PATH']}"
    checked = _run(ANSIBLE_BIN / "molecule", "syntax", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "playbook: " + str(REPO_ROOT / "site.yml") in checked.stdout, checked.stdout


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_typed_in_argument_specs(role):
    base = REPO_ROOT / "roles" / role
    defaults = yaml.safe_load((base / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((base / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    # Every entry point (main, teardown, ...) types the options it reads.
    typed = {name for entry in specs.values() for name in entry.get("options", {})}
    assert set(defaults) == typed, f"untyped: {set(defaults) - typed}; typed without default: {typed - set(defaults)}"
    assert all(name.startswith(f"{role}_") for name in defaults), sorted(defaults)
