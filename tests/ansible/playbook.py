"""Run ansible-playbook from the repository root and read its result as data (the json callback):
the recap per host, the tasks that changed, the failures with their messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.cluster.toolbox import REPO_ROOT

ANSIBLE_BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    returncode: int
    seconds: float
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    output: str = ""

    def total(self, counter: str) -> int:
        return sum(host[counter] for host in self.stats.values())

    def explain(self) -> str:
        """What a failed assertion shows: the recap, changed tasks, failures, the output's tail."""
        return (
            f"rc={self.returncode} recap={self.stats}\nchanged: {self.changed}\n"
            f"failures: {self.failures}\n--- output tail ---\n{self.output[-3000:]}"
        )


def _task_results(play_tasks: list[dict]):
    for entry in play_tasks:
        name = entry["task"]["name"]
        for host, result in entry["hosts"].items():
            items = result.get("results") or [result]
            for item in items:
                label = item.get("_ansible_item_label", item.get("item"))
                yield f"{host}: {name}" + (f" ({label})" if "results" in result else ""), item


def run_playbook(
    playbook: str,
    *args: str,
    kubeconfig: Path,
    inventory: str = "inventories/ci",
    timeout: float = 1800,
) -> PlaybookRun:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{ANSIBLE_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    began = time.monotonic()
    completed = subprocess.run(
        [ANSIBLE_BIN / "ansible-playbook", "-i", inventory, playbook, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    run = PlaybookRun(
        completed.returncode,
        round(time.monotonic() - began, 1),
        output=completed.stdout + completed.stderr,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return run  # ansible stopped before the first play (syntax, inventory): output says why
    run.stats = report["stats"]
    for play in report["plays"]:
        for label, result in _task_results(play["tasks"]):
            if result.get("changed"):
                run.changed.append(label)
            if result.get("failed"):
                run.failures.append(f"{label}: {result.get('msg', '')}")
    return run
