"""Images and signatures as the pipelines make them, in a local registry (tools.cluster.registry):
tiny images of a chosen age, and cosign v2 with a local key and no transparency log (a laptop has
none to upload to)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from tools.cluster.registry import crane
from tools.cluster.toolbox import run, tool

# cosign reads the key's password from here; a throwaway key per test needs no secret one.
_COSIGN_ENV = {**os.environ, "COSIGN_PASSWORD": "test-only"}


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
