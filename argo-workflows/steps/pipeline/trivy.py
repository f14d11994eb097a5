"""Trivy, run so that only the advisory database download may use the network: no version check, no
telemetry (Trivy sends one unless both are off), no registry lookups of language packages. Trivy
exits 1 on its own errors; the gate asks for 3 on findings, so the two never look alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import Failed
from pipeline.proc import last_line, run

FINDINGS_EXIT = 3
GATED_SEVERITIES = "HIGH,CRITICAL"


@dataclass(frozen=True)
class Database:
    """Where the advisory database comes from: `cache_dir/db` as it is (`skip_update`), or a download."""

    cache_dir: Path | None
    skip_update: bool
    repository: str | None
    insecure: bool

    def flags(self) -> list[str]:
        flags = ["--skip-version-check", "--disable-telemetry", "--offline-scan", "--quiet"]
        # The layer analysis stays in memory: a shared cache volume keeps only the database.
        flags += ["--cache-backend", "memory"]
        if self.cache_dir is not None:
            flags += ["--cache-dir", str(self.cache_dir)]
        if self.skip_update:
            flags += ["--skip-db-update", "--skip-java-db-update"]
        if self.repository:
            flags += ["--db-repository", self.repository]
        if self.insecure:
            flags.append("--insecure")
        return flags


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    package: str
    installed: str
    fixed: str

    def line(self) -> str:
        return f"{self.id} {self.severity} {self.package} {self.installed} (fixed: {self.fixed or 'none'})"


def sbom(layout: Path, db: Database, output: Path) -> None:
    """A CycloneDX SBOM of the image: every OS and language package Trivy finds."""
    _image(layout, db, ["--format", "cyclonedx", "--output", str(output)])


def scan(layout: Path, db: Database, allow_list: Path, output: Path) -> tuple[list[Finding], list[Finding]]:
    """The gate's scan, its JSON report written to `output`: (findings, findings waived)."""
    code = _image(
        layout,
        db,
        [
            "--scanners",
            "vuln",
            "--severity",
            GATED_SEVERITIES,
            "--ignorefile",
            str(allow_list),
            "--show-suppressed",
            "--exit-code",
            str(FINDINGS_EXIT),
            "--format",
            "json",
            "--output",
            str(output),
        ],
        allowed=(0, FINDINGS_EXIT),
    )
    found, waived = read_report(output)
    # Trivy's verdict and its report must agree; if they do not, neither can be trusted.
    if bool(found) != (code == FINDINGS_EXIT):
        raise Failed(f"trivy exited {code} but its report {output} lists {len(found)} findings; rerun the scan")
    return found, waived


def read_report(path: Path) -> tuple[list[Finding], list[Finding]]:
    try:
        report = json.loads(path.read_text())
        results = report.get("Results") or []
        found = [_finding(v) for result in results for v in result.get("Vulnerabilities") or []]
        waived = [
            _finding(m["Finding"])
            for result in results
            for m in result.get("ExperimentalModifiedFindings") or []
            if m.get("Type") == "vulnerability"
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise Failed(f"trivy wrote no readable JSON report to {path}; rerun the scan") from None
    return found, waived


def _finding(vulnerability: dict) -> Finding:
    return Finding(
        vulnerability["VulnerabilityID"],
        vulnerability["Severity"],
        vulnerability["PkgName"],
        vulnerability.get("InstalledVersion", ""),
        vulnerability.get("FixedVersion", ""),
    )


def _image(layout: Path, db: Database, args: list[str], allowed: tuple[int, ...] = (0,)) -> int:
    """`trivy image` of the OCI layout with the database's flags, then `args`; its exit code, one of `allowed`."""
    result = run(["trivy", "image", "--input", str(layout), *db.flags(), *args], check=False)
    if result.returncode not in allowed:
        raise Failed(
            f"trivy exited {result.returncode}: {last_line(result.stderr or result.stdout)}; "
            "this is Trivy's own error, not a finding: the image was not judged"
        )
    return result.returncode
