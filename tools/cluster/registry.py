"""A local OCI registry (distribution v3, `registry` from `make tools`) and crane beside it: the
registry real nodes pull from (the one `make cluster-up` starts, the tests' own), and an OCI layout
pushed to it as is, so the digest a chart pins is the layout's."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tools.cluster.processes import ProcessGroup
from tools.cluster.toolbox import free_port, run, tool


class LocalRegistry:
    """`registry serve` on <address>:<free port> (loopback unless a real node's pods must reach it:
    then its bridge address), storage under `root`; plain HTTP. It runs in a process group of its
    own, or in `group` (a cluster's), which then stops it with the cluster's other processes."""

    def __init__(self, root: Path, address: str = "127.0.0.1", group: ProcessGroup | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.host = f"{address}:{self.port}"
        self._processes = group or ProcessGroup(root, detached=False)

    def start(self, timeout: float = 20) -> LocalRegistry:
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n"
            # Deletes on, as the platform's registry has them: the cleanup step deletes by digest.
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
            "log:\n  level: warn\n"
        )
        process = self._processes.start("registry", [str(tool("registry")), "serve", str(config)])
        log = self._processes.state_dir / "registry.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"registry exited {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"registry not answering on {self.host} within {timeout} s")

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._processes.children if child.name == "registry"]

    def stop(self) -> None:
        self._processes.stop_one("registry")


def crane(*args: str) -> str:
    return run([tool("crane"), *args, "--insecure"]).stdout.strip()


def push_layout(layout: Path, reference: str) -> str:
    """Push an OCI layout as is (its blobs and manifest bytes unchanged); returns the registry's digest."""
    crane("push", str(layout), reference)
    return crane("digest", reference)


def layout_digest(layout: Path) -> str:
    """The manifest digest of the one image in OCI `layout`: what a push of it yields."""
    (manifest,) = json.loads((layout / "index.json").read_text())["manifests"]
    return manifest["digest"]


def push_by_digest(layout: Path, repository: str) -> str:
    """Push the image of `layout` to `repository` with no tag; returns `repository@<digest>`."""
    reference = f"{repository}@{layout_digest(layout)}"
    pushed = push_layout(layout, reference)
    if f"{repository}@{pushed}" != reference:
        raise RuntimeError(f"the registry holds {pushed} where {reference} was pushed")
    return reference
