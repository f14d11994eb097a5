"""The catalog on the by-hand cluster, as docs/testing.md walks a user through it: the commands of
its block, run one by one as a user's shell runs them (`make cluster-up`, `make cluster-image`,
helm install of the dev environment, `kubectl port-forward` in the background, curl through it,
`make cluster-down`), with what each must have done checked in between; then nothing of that
cluster is left on the host."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.harness import wait_gone
from tests.support.tiers import skip_or_fail
from tools.cluster import processes, realnode
from tools.cluster.controlplane import CHART_VALUES, DETACHED_RECORD, KUBECONFIG
from tools.cluster.realnode.cleanup import leftovers, live_runs, read_record
from tools.cluster.toolbox import REPO_ROOT, connects, free_port, missing, run, tool

pytestmark = pytest.mark.realnode

DOC = REPO_ROOT / "docs" / "testing.md"
INTRO = "The catalog on the real node, by hand"
DOC_PORT = "8080"  # the local port the doc forwards; the test takes a free one instead
NAMESPACE, RELEASE = "catalog-dev", "catalog"


def documented_commands(port: int) -> list[str]:
    """The commands of the doc's block (continued lines joined), its local port replaced by `port`."""
    block = re.search(re.escape(INTRO) + r"[^\n]*\n+```sh\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert block, f"{DOC} has no sh block after {INTRO!r}"
    return block.group(1).replace("\\\n", " ").replace(DOC_PORT, str(port)).splitlines()


class UserShell:
    """Runs the documented commands in their order, as a user's shell would: in the repository's
    root, each `export` carried on to the next commands, `<command> &` in the background until
    `kill %1`. Each call runs the next command, which must begin with what the test expects."""

    def __init__(self, commands: list[str]) -> None:
        self.pending = list(commands)
        self.env = dict(os.environ)
        self.background: subprocess.Popen[str] | None = None
        self.seconds: dict[str, float] = {}  # each command's wall time, by how the test names it

    def _next(self, start: str) -> str:
        assert self.pending, f"the doc's block ends before {start!r}"
        command = self.pending.pop(0)
        assert command.startswith(start), f"the doc's next command is {command!r}, the test expects {start!r}"
        return command

    def run(self, start: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = self._next(start)
        if command.startswith("export "):  # the environment it leaves, NUL-separated
            command += "\nenv -0"
        began = time.monotonic()
        result = subprocess.run(
            ["bash", "-c", command], cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        self.seconds[start] = round(time.monotonic() - began, 1)
        assert result.returncode == 0, f"{command}\nexited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        if command.startswith("export "):
            self.env = dict(entry.split("=", 1) for entry in result.stdout.split("\0") if "=" in entry)
        return result

    def start_background(self, start: str) -> subprocess.Popen[str]:
        command = self._next(start).removesuffix("&")
        self.background = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=REPO_ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        return self.background

    def kill_background(self, start: str) -> None:
        self._next(start)
        self.stop_background()

    def stop_background(self) -> None:
        if self.background is not None and self.background.poll() is None:
            self.background.terminate()
            self.background.wait(timeout=10)


def kubectl(*args: str) -> str:
    return run([tool("kubectl"), f"--kubeconfig={KUBECONFIG}", *args]).stdout


def test_the_documented_path_reaches_the_catalog_through_a_port_forward_and_leaves_nothing():
    unmet = realnode.unmet_prerequisites()
    unmet += [name for name in ("podman", "buildah", "curl") if shutil.which(name) is None]
    unmet += missing(["registry", "crane", "helm", "kubectl"])
    if unmet:
        skip_or_fail(f"the by-hand path needs {'; '.join(unmet)}")
    if DETACHED_RECORD.exists():
        skip_or_fail(f"a `make cluster-up` cluster is recorded in {DETACHED_RECORD}; this test would stop it")
    alone = not live_runs()  # the host-wide state is restored only by the last run out
    port = free_port()
    shell = UserShell(documented_commands(port))
    try:
        started = time.monotonic()
        up = shell.run("make cluster-up")

        record = json.loads(DETACHED_RECORD.read_text())
        registry = re.search(r"^registry (\S+):", up.stdout, re.MULTILINE)
        assert registry, up.stdout
        assert registry.group(1) == record["registry"]
        # On the real node's bridge address, where the apiserver serves too.
        assert record["registry"].split(":")[0] == record["server"].removeprefix("https://").split(":")[0]
        node_dir, plane_dir = Path(record["real_nodes"]), Path(record["state_dir"])
        node_record = read_record(node_dir)
        assert node_record is not None
        pids = [child["pid"] for state in (node_dir, plane_dir) for child in processes.read_pidfile(state)["children"]]

        pushed = shell.run("make cluster-image", timeout=1800)

        digest = re.search(r"^digest: (sha256:\w+)$", pushed.stdout, re.MULTILINE)
        assert digest, pushed.stdout
        reference = f"{record['registry']}/catalog@{digest.group(1)}"
        assert f"catalog image: {reference}\n" in pushed.stdout
        assert yaml.safe_load(CHART_VALUES.read_text()) == realnode.node_values(reference)

        shell.run("export")
        shell.run("helm install")

        (pod,) = json.loads(kubectl("get", "pods", "-n", NAMESPACE, "-o", "json"))["items"]
        assert pod["spec"]["nodeName"] == "real-0"
        assert {c["image"] for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]} == {reference}
        (catalog,) = [c for c in pod["status"]["containerStatuses"] if c["name"] == "catalog"]
        assert catalog["imageID"] == reference, catalog  # pulled by that name from the cluster's registry

        forward = shell.start_background("kubectl port-forward")
        assert forward.stdout is not None
        assert forward.stdout.readline().startswith(f"Forwarding from 127.0.0.1:{port} -> "), "port-forward not up"
        ready = shell.run("curl -fsS 127.0.0.1")
        listed = shell.run("curl -fsS -H")
        anonymous = httpx.get(f"http://127.0.0.1:{port}/v1/products", timeout=10)
        shell.kill_background("kill %1")

        assert json.loads(ready.stdout) == {"status": "ok", "checks": {"database": "ok"}}
        assert json.loads(listed.stdout)["items"] == []
        assert anonymous.status_code == 401  # so the call above was let in by its token
        assert forward.returncode is not None
        assert not connects("127.0.0.1", port)

        shell.run("make cluster-down")
        print(f"\nthe by-hand path in {time.monotonic() - started:.0f} s: {shell.seconds}")

        assert shell.pending == []
        assert wait_gone(pids) == []
        assert leftovers(node_dir, node_record, shared=alone) == []
        assert not plane_dir.exists()
        address, registry_port = record["registry"].rsplit(":", 1)
        assert not connects(address, int(registry_port))
        assert [path for path in (DETACHED_RECORD, KUBECONFIG, CHART_VALUES) if path.exists()] == []
    finally:
        shell.stop_background()
        if DETACHED_RECORD.exists():
            subprocess.run(["make", "cluster-down"], cwd=REPO_ROOT, capture_output=True, timeout=300, check=False)
