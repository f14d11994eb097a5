"""An image built here, on the real nodes without a registry: its OCI layout imported into each
node's containerd under `<repository>@<manifest digest>`, the reference a chart pins. The kubelet
finds the image there and pulls nothing (pullPolicy IfNotPresent); it goes with the node's state
directory. `make cluster-image` does this with `make image`'s catalog on the nodes of
`make cluster-up` (load_catalog)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import yaml

from tools.cluster.toolbox import run, tool

from .cleanup import read_record
from .config import node_values

# `make image`'s local name; no registry answers for it, so only an imported image resolves.
CATALOG_REPOSITORY = "localhost/catalog"


def ctr(socket: Path, *args: str):
    """ctr against one node's containerd, in the namespace the kubelet's images live in."""
    return run([tool("ctr"), f"--address={socket}", "--namespace=k8s.io", *args])


def node_sockets(state_dir: Path) -> list[Path]:
    """The containerd sockets of the real-node run in `state_dir`, from its record."""
    record = read_record(state_dir) or {}
    return [Path(socket) for socket in record.get("sockets", [])]


def manifest_digest(layout: Path) -> str:
    """The digest of the one image in OCI `layout` (what a push of it yields)."""
    (manifest,) = json.loads((layout / "index.json").read_text())["manifests"]
    return manifest["digest"]


def import_layout(sockets: list[Path], layout: Path, repository: str, scratch: Path) -> str:
    """Import the image of `layout` into the containerd of each socket (the tar ctr reads is
    written to `scratch` and removed); return `repository@<manifest digest>`."""
    if not sockets:
        raise ValueError("no real node to import the image into")
    digest = manifest_digest(layout)
    archive = scratch / "image-import.tar"
    with tarfile.open(archive, "w") as tar:
        for entry in sorted(layout.iterdir()):
            tar.add(entry, arcname=entry.name)
    try:
        for socket in sockets:
            # --local: the transfer service's import names the digest of the layout's index, not
            # the manifest's, so `repository@<manifest digest>` would not resolve and the kubelet
            # would try to pull it from a registry at `localhost`.
            ctr(socket, "images", "import", "--local", f"--base-name={repository}", "--digests", str(archive))
    finally:
        archive.unlink(missing_ok=True)
    return f"{repository}@{digest}"


def load_catalog(state_dir: Path, layout: Path, values_file: Path) -> str:
    """`make cluster-image` for the real-node run in `state_dir`: the catalog image of `layout`
    imported into every node, and the chart values for it (the image pin, the real node's
    placement) written to `values_file`; returns the image's reference."""
    reference = import_layout(node_sockets(state_dir), layout, CATALOG_REPOSITORY, state_dir)
    values_file.write_text(yaml.safe_dump(node_values(reference)))
    return reference
