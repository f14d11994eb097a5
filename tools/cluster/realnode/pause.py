"""Images made here from one static binary of `.tools/bin`: the sandbox image (tools/pause) and
metrics-server's. One uncompressed layer holding the binary, written as an OCI archive that
`ctr images import` reads. No registry and no image builder; the name carries the binary's
digest, so a rebuilt binary is a new image. `write_image` packs any such single-layer image (the
storage provisioner's helper, storage.py); `write_layout` writes one as an OCI layout directory,
for a registry (Argo Workflows' executor, tools/cluster/argo_workflows.py)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REPOSITORY = "localhost/catalog-platform/pause"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar(
    files: dict[str, tuple[bytes, int]], links: dict[str, str] | None = None, directories: dict[str, int] | None = None
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in (directories or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
            tar.addfile(info)
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
            tar.addfile(info)
    return buffer.getvalue()


def image_name(binary: Path, repository: str = REPOSITORY) -> str:
    return f"{repository}:{hashlib.sha256(binary.read_bytes()).hexdigest()[:12]}"


def write_archive(binary: Path, archive: Path, repository: str = REPOSITORY) -> str:
    """Write the image of `binary` (entrypoint /<its name>) to `archive`; return the image's name."""
    name = image_name(binary, repository)
    # The upstream pause runs as 65535 too: the sandbox needs no privilege (nor does
    # metrics-server, whose pod sets its own user).
    config = {"Entrypoint": [f"/{binary.name}"], "User": "65535:65535"}
    write_image(archive, name, {binary.name: (binary.read_bytes(), 0o755)}, config)
    return name


def write_image(
    archive: Path, name: str, files: dict[str, tuple[bytes, int]], config: dict, links: dict[str, str] | None = None
) -> None:
    """Write image `name` to `archive`: one layer of `files` (path: (content, mode)) and symbolic
    `links` (path: target), with the image `config` (Entrypoint, User, Env)."""
    archive.write_bytes(_tar(_layout(name, files, config, links)))


def write_layout(
    directory: Path, name: str, files: dict[str, tuple[bytes, int]], config: dict, directories: dict[str, int]
) -> None:
    """Write image `name` as an OCI layout into `directory`: one layer of `files` (path: (content,
    mode)) and `directories` (path: mode), with the image `config`."""
    for path, (data, _) in _layout(name, files, config, directories=directories).items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)


def _layout(
    name: str,
    files: dict[str, tuple[bytes, int]],
    config: dict,
    links: dict[str, str] | None = None,
    directories: dict[str, int] | None = None,
) -> dict[str, tuple[bytes, int]]:
    """The files of an OCI layout (path: (content, mode)) holding image `name` of one layer."""
    layer = _tar(files, links, directories)
    config_blob = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(config_blob), "size": len(config_blob)},
            "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": _digest(manifest),
                "size": len(manifest),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                },
            }
        ],
    }
    entries = {
        "oci-layout": (b'{"imageLayoutVersion":"1.0.0"}', 0o644),
        "index.json": (json.dumps(index).encode(), 0o644),
    }
    for blob in (layer, config_blob, manifest):
        entries[f"blobs/sha256/{_digest(blob).split(':')[1]}"] = (blob, 0o644)
    return entries
