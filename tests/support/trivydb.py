"""A Trivy advisory database for the scan gate's tests, written by `trivy-testdb` (trivy-db's own
packages; the real database cannot be downloaded here). The advisories are made up (CVE-2099-*)
but match what the catalog image really holds: Debian's openssl source package, and the
cryptography wheel at the version apps/catalog/constraints.txt pins."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Collection
from pathlib import Path

from tools.cluster.toolbox import REPO_ROOT, run, tool

OPENSSL = "CVE-2099-0001"  # Debian, source package openssl: the binaries libssl3 and openssl
CRYPTOGRAPHY = "CVE-2099-0002"  # PyPI, the pinned cryptography
PYTHON_MEDIUM = "CVE-2099-0003"  # matches python3.11 but is MEDIUM: below the gate
SANIC_OLD = "CVE-2099-0004"  # CRITICAL, but only for a sanic older than the image's
# What a scan of the catalog image reports for OPENSSL: both binaries of Debian's openssl.
OPENSSL_FINDINGS = {(OPENSSL, "libssl3"), (OPENSSL, "openssl")}


def pinned() -> dict[str, str]:
    """apps/catalog/constraints.txt as {name: version}: what the image's site-packages must hold."""
    pins = {}
    for line in (REPO_ROOT / "apps" / "catalog" / "constraints.txt").read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;#]+).*", line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def advisories() -> list[dict]:
    # No fixed version for the Debian ones: "affected, not fixed" matches whatever openssl the base has.
    return [
        {"id": OPENSSL, "ecosystem": "debian 12", "package": "openssl", "fixed": "", "severity": "HIGH"},
        {"id": PYTHON_MEDIUM, "ecosystem": "debian 12", "package": "python3.11", "fixed": "", "severity": "MEDIUM"},
        {
            "id": CRYPTOGRAPHY,
            "ecosystem": "pip",
            "package": "cryptography",
            "vulnerable": [f"=={pinned()['cryptography']}"],
            "patched": [],
            "severity": "HIGH",
        },
        {"id": SANIC_OLD, "ecosystem": "pip", "package": "sanic", "vulnerable": ["<0.1"], "severity": "CRITICAL"},
    ]


def write_database(cache: Path, only: Collection[str] = ()) -> Path:
    """`cache`/db holding advisories() (`only` those ids, when given): a Trivy --cache-dir for
    --skip-db-update. Returns `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    spec = cache / "advisories.json"
    spec.write_text(json.dumps([a for a in advisories() if not only or a["id"] in only]))
    run([tool("trivy-testdb"), spec, cache / "db"], timeout=120)
    return cache


def waiver(vuln: str, *, statement: str | None = "tested waiver", expires: object = "2999-12-31") -> dict:
    """An entry of the scan's allow-list (None leaves the key out)."""
    entry: dict[str, object] = {"id": vuln}
    if statement is not None:
        entry["statement"] = statement
    if expires is not None:
        entry["expired_at"] = expires
    return entry


def allow_list(path: Path, entries: list[dict]) -> Path:
    """`entries` written as .trivyignore.yaml at `path`."""
    # Dates unquoted, as a person writes them (YAML reads them as dates; Trivy as well).
    lines = ["vulnerabilities:" + ("" if entries else " []")]
    for entry in entries:
        lines.append(f"  - id: {entry['id']}")
        lines += [f"    {key}: {value}" for key, value in entry.items() if key != "id"]
    path.write_text("\n".join(lines) + "\n")
    return path


def reported(report: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(findings, waived findings) of a scan's JSON report, as (id, package) pairs."""
    results = json.loads(report.read_text()).get("Results") or []
    found = {(v["VulnerabilityID"], v["PkgName"]) for r in results for v in r.get("Vulnerabilities") or []}
    waived = {
        (m["Finding"]["VulnerabilityID"], m["Finding"]["PkgName"])
        for r in results
        for m in r.get("ExperimentalModifiedFindings") or []
    }
    return found, waived


# How Trivy finds its database in a registry (`--db-repository`): one layer of this type, a gzipped
# tar of trivy.db and metadata.json, under a config of the other type.
DB_LAYER = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip"
DB_CONFIG = "application/vnd.aquasec.trivy.config.v1+json"
TITLE = "org.opencontainers.image.title"


def database_layout(cache: Path, layout: Path) -> Path:
    """`cache`/db (write_database) as an OCI layout in `layout`, the artifact Trivy downloads."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in ("trivy.db", "metadata.json"):
            archive.add(cache / "db" / name, arcname=name)
    blobs = {"layer": gzip.compress(buffer.getvalue(), mtime=0), "config": b"{}"}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _descriptor(DB_CONFIG, blobs["config"]),
        # Trivy names the downloaded file after the title and unpacks it for its .tar.gz suffix.
        "layers": [{**_descriptor(DB_LAYER, blobs["layer"]), "annotations": {TITLE: "db.tar.gz"}}],
    }
    blobs["manifest"] = json.dumps(manifest).encode()
    for blob in blobs.values():
        path = layout / "blobs" / "sha256" / hashlib.sha256(blob).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    index = {"schemaVersion": 2, "manifests": [_descriptor(manifest["mediaType"], blobs["manifest"])]}
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return layout


def _descriptor(media_type: str, blob: bytes) -> dict:
    return {"mediaType": media_type, "digest": f"sha256:{hashlib.sha256(blob).hexdigest()}", "size": len(blob)}
