"""Run ansible-playbook, or the platform's Molecule scenario, from the repository root and read the
result as data (the json callback's report): the recap per host, the tasks that changed (also
counted per role), the failures with their messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tools.cluster.toolbox import REPO_ROOT

ANSIBLE_BIN = Path(sys.executable).parent
# Enabled for `molecule test`: the json callback's report of each run, appended to a file.
CALLBACK_PLUGINS = Path(__file__).parent / "callback_plugins"


@dataclass
class PlaybookRun:
    returncode: int
    seconds: float
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    output: str = ""
    # Changed tasks per role (tasks outside a role under ""), and every role that ran a task.
    changed_by_role: Counter[str] = field(default_factory=Counter)
    roles: set[str] = field(default_factory=set)
    plays: list[str] = field(default_factory=list)

    def total(self, counter: str) -> int:
        return sum(host[counter] for host in self.stats.values())

    def explain(self) -> str:
        """What a failed assertion shows: the recap, changed tasks, failures, the output's tail."""
        return (
            f"rc={self.returncode} recap={self.stats}\nchanged: {self.changed}\n"
            f"failures: {self.failures}\n--- output tail ---\n{self.output[-3000:]}"
        )

    def read_report(self, report: dict) -> PlaybookRun:
        """Fill the recap, changed tasks and failures from the json callback's report."""
        self.stats = report["stats"]
        for play in report["plays"]:
            self.plays.append(play["play"]["name"])
            for role, label, result in _task_results(play["tasks"]):
                self.roles.add(role)
                if result.get("changed"):
                    self.changed.append(label)
                    self.changed_by_role[role] += 1
                if result.get("failed"):
                    self.failures.append(f"{label}: {result.get('msg', '')}")
        return self


def _task_results(play_tasks: list[dict]):
    """(role, label, result) per host and loop item; the json callback names a role's task
    `<role> : <task>`."""
    for entry in play_tasks:
        name = entry["task"]["name"]
        role = name.split(" : ", 1)[0] if " : " in name else ""
        for host, result in entry["hosts"].items():
            items = result.get("results") or [result]
            for item in items:
                label = item.get("_ansible_item_label", item.get("item"))
                yield role, f"{host}: {name}" + (f" ({label})" if "results" in result else ""), item


def _environment(kubeconfig: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{ANSIBLE_BIN}{os.pathsep}{os.environ['PATH']}",
        **extra,
    }


def _run(command: list[str | Path], env: dict[str, str], timeout: float) -> tuple[int, float, str, str]:
    began = time.monotonic()
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    return completed.returncode, round(time.monotonic() - began, 1), completed.stdout, completed.stderr


def run_playbook(
    playbook: str,
    *args: str,
    kubeconfig: Path,
    inventory: str = "inventories/ci",
    timeout: float = 1800,
) -> PlaybookRun:
    env = _environment(kubeconfig, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    command: list[str | Path] = [ANSIBLE_BIN / "ansible-playbook", "-i", inventory, playbook, *args]
    returncode, seconds, stdout, stderr = _run(command, env, timeout)
    run = PlaybookRun(returncode, seconds, output=stdout + stderr)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        return run  # ansible stopped before the first play (syntax, inventory): output says why
    return run.read_report(report)


@dataclass
class MoleculeRun:
    """`molecule <command>` of molecule/default: its exit code and output, and one PlaybookRun per
    ansible-playbook run it made, in order (for `test`: prepare, converge, idempotence, verify)."""

    returncode: int
    seconds: float
    output: str
    steps: list[PlaybookRun]

    @property
    def converges(self) -> list[PlaybookRun]:
        """The runs of site.yml: converge, then idempotence (the same playbook again)."""
        return [step for step in self.steps if step.plays and step.plays[0] not in ("Prepare", "Verify")]

    def step(self, play: str) -> PlaybookRun | None:
        """The run of the prepare or verify playbook (named by its one play), if it ran."""
        return next((step for step in self.steps if step.plays == [play]), None)

    def explain(self) -> str:
        return f"molecule rc={self.returncode} after {self.seconds} s\n--- output tail ---\n{self.output[-5000:]}"


def run_molecule(command: str, *, kubeconfig: Path, workdir: Path, timeout: float = 3600) -> MoleculeRun:
    """Molecule's state goes to `workdir` (so a rerun starts afresh), the reports to a file there."""
    report = workdir / f"{command}.jsonl"
    report.unlink(missing_ok=True)
    env = _environment(
        kubeconfig,
        MOLECULE_EPHEMERAL_DIRECTORY=str(workdir / "molecule"),
        NO_COLOR="1",
        ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_PLUGINS),
        ANSIBLE_CALLBACKS_ENABLED="json_report",
        CATALOG_ANSIBLE_JSON_REPORT=str(report),
    )
    returncode, seconds, stdout, stderr = _run([ANSIBLE_BIN / "molecule", command], env, timeout)
    lines = report.read_text().splitlines() if report.exists() else []
    # Each run's own exit code is not in its report: a run with a failed or unreachable host failed.
    steps = [PlaybookRun(0, 0.0, output="(see the molecule output)").read_report(json.loads(line)) for line in lines]
    for step in steps:
        step.returncode = 2 if step.total("failures") or step.total("unreachable") else 0
    return MoleculeRun(returncode, seconds, stdout + stderr, steps)
