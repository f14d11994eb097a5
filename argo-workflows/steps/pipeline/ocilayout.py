"""An OCI image layout on disk (what the build wrote, or `crane pull --format oci`): which manifest
it holds. The scan must read the bytes that were pushed, so the layout has to hold exactly the
digest the pipeline carries, and the manifest blob must hash to it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.errors import UsageError


def check_holds(layout: Path, digest: str) -> None:
    """UsageError unless `layout` is an OCI layout whose index names `digest` and nothing else."""
    where = f"argument --layout: {layout}"
    try:
        index = json.loads((layout / "index.json").read_text())
        held = [manifest["digest"] for manifest in index["manifests"]]
    except OSError:
        raise UsageError(f"{where} has no index.json; give the OCI layout the build wrote") from None
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{where}/index.json is not an OCI image index; rebuild or pull the image") from None
    if held != [digest]:
        raise UsageError(f"{where} holds {held or 'no manifest'}, not {digest}; build or pull that image into it")
    blob = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    try:
        content = blob.read_bytes()
    except OSError:
        raise UsageError(f"{where} lacks the manifest blob of {digest}; pull the image again") from None
    if f"sha256:{hashlib.sha256(content).hexdigest()}" != digest:
        raise UsageError(f"{where}: the manifest blob of {digest} does not hash to it; pull the image again")
