"""A Trivy advisory database for the scan gate's tests, written by `trivy-testdb` (trivy-db's own
packages; the real database cannot be downloaded here). The advisories are made up (CVE-2099-*)
but match what the catalog image really holds: Debian's openssl source package, and the
cryptography wheel at the version apps/catalog/constraints.txt pins."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tools.cluster.toolbox import REPO_ROOT, run, tool

OPENSSL = "CVE-2099-0001"  # Debian, source package openssl: the binaries libssl3 and openssl
CRYPTOGRAPHY = "CVE-2099-0002"  # PyPI, the pinned cryptography
PYTHON_MEDIUM = "CVE-2099-0003"  # matches python3.11 but is MEDIUM: below the gate
SANIC_OLD = "CVE-2099-0004"  # CRITICAL, but only for a sanic older than the image's


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


def write_database(cache: Path) -> Path:
    """`cache`/db holding advisories(): a Trivy --cache-dir for --skip-db-update. Returns `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    spec = cache / "advisories.json"
    spec.write_text(json.dumps(advisories()))
    run([tool("trivy-testdb"), spec, cache / "db"], timeout=120)
    return cache
