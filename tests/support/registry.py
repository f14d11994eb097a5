"""A local OCI registry (distribution v3, `registry` from `make tools`) on loopback, with crane
and cosign v2 as the pipelines use them: push an OCI layout, read digests, sign and verify with a
local key and no transparency log (a laptop has none to upload to)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tools.cluster.processes import ProcessGroup
from tools.cluster.toolbox import free_port, run, tool

# cosign reads the key's password from here; a throwaway key per test needs no secret one.
_COSIGN_ENV = {**os.environ, "COSIGN_PASSWORD": "test-only"}


class LocalRegistry:
    """`registry serve` on <address>:<free port> (loopback unless a real node's pods must reach it:
    then its bridge address), storage under `root`; plain HTTP."""

    def __init__(self, root: Path, address: str = "127.0.0.1") -> None:
        self.root = root
        self.port = free_port()
        self.host = f"{address}:{self.port}"
        self._processes = ProcessGroup(root, detached=False)

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"registry exited {process.returncode}: {(self.root / 'registry.log').read_text()}")
            try:
                if httpx.get(f"http://{self.host}/v2/", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"registry not answering on {self.host} within {timeout} s")

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._processes.children]

    def stop(self) -> None:
        self._processes.stop()


def crane(*args: str) -> str:
    return run([tool("crane"), *args, "--insecure"]).stdout.strip()


def push_layout(layout: Path, reference: str) -> str:
    """Push an OCI layout as is (its blobs and manifest bytes unchanged); returns the registry's digest."""
    crane("push", str(layout), reference)
    return crane("digest", reference)


def push_tiny_image(reference: str, created: datetime, scratch: Path) -> str:
    """Push a one-layer image of random bytes whose config says it was built at `created`; returns
    its digest. Each call makes a new image (the retention tests tell images apart by age)."""
    layer = scratch / f"layer-{os.urandom(6).hex()}.tar"
    with tarfile.open(layer, "w") as archive:
        content = os.urandom(64)
        info = tarfile.TarInfo("payload")
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    crane("append", "--oci-empty-base", "--new_layer", str(layer), "--new_tag", reference)
    config = json.loads(crane("config", reference))
    config["created"] = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run([tool("crane"), "edit", "config", reference, "--insecure"], input=json.dumps(config))
    layer.unlink()
    return crane("digest", reference)


def cosign_keypair(directory: Path) -> tuple[Path, Path]:
    run([tool("cosign"), "generate-key-pair", "--output-key-prefix", str(directory / "cosign")], env=_COSIGN_ENV)
    return directory / "cosign.key", directory / "cosign.pub"


def cosign_sign(reference: str, key: Path) -> None:
    run(
        [tool("cosign"), "sign", "--key", str(key), "--tlog-upload=false", "--allow-http-registry", "--yes", reference],
        env=_COSIGN_ENV,
    )


def cosign_attest(reference: str, key: Path, predicate: Path) -> None:
    """Attach `predicate` (a JSON file) as an in-toto attestation: the `sha256-<hex>.att` tag."""
    run(
        [tool("cosign"), "attest", "--key", str(key), "--type", "custom", "--predicate", str(predicate),
         "--tlog-upload=false", "--allow-http-registry", "--yes", reference],
        env=_COSIGN_ENV,
    )  # fmt: skip


def cosign_verify(reference: str, public_key: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(
        [
            tool("cosign"),
            "verify",
            "--key",
            str(public_key),
            "--insecure-ignore-tlog",
            "--allow-http-registry",
            reference,
        ],
        check=check,
        env=_COSIGN_ENV,
    )
