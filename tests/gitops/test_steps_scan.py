"""`pipeline scan`: real Trivy on the catalog image's OCI layout (`make image`), against an advisory
database the test writes with trivy-db's own packages (tests.support.trivydb): none can be
downloaded here."""

from __future__ import annotations

import datetime
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.container.podman import ImageBuild, make_image
from tests.gitops.steps_cli import assert_refused, python_ready, steps
from tests.support.tiers import skip_or_fail
from tests.support.trivydb import (
    CRYPTOGRAPHY,
    OPENSSL,
    OPENSSL_FINDINGS,
    allow_list,
    pinned,
    reported,
    waiver,
    write_database,
)
from tools.cluster.toolbox import REPO_ROOT, missing

pytestmark = pytest.mark.gitops


@pytest.fixture(scope="session")
def scan_image() -> ImageBuild:
    absent = [name for name in ("podman", "buildah") if shutil.which(name) is None]
    absent += missing(["trivy", "trivy-testdb"])
    unmet = python_ready()
    if absent or unmet:
        skip_or_fail(f"the scan step needs {', '.join(absent) or unmet} (make tools; apt-get install podman buildah)")
    return make_image()


@pytest.fixture(scope="session")
def trivy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Trivy cache dir whose db/ holds the test's advisories."""
    return write_database(tmp_path_factory.mktemp("trivy-cache"))


def run_scan(image: ImageBuild, tmp_path: Path, cache: Path, waivers: list[dict], digest: str = ""):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    reports = tmp_path / "reports"
    done = steps(
        "scan",
        "--layout",
        str(image.layout),
        "--image",
        f"localhost/catalog@{digest or image.digest}",
        "--allow-list",
        str(allow_list(tmp_path / ".trivyignore.yaml", waivers)),
        "--reports",
        str(reports),
        "--skip-db-update",
        "--cache-dir",
        str(cache),
        home=home,
    )
    return done, reports


DEBIAN = OPENSSL_FINDINGS
PYPI = {(CRYPTOGRAPHY, "cryptography")}
YESTERDAY = (datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("waivers", "code", "found", "waived", "says"),
    [
        pytest.param([], 3, DEBIAN | PYPI, set(), f"not waived: {OPENSSL}, {CRYPTOGRAPHY}", id="nothing-waived"),
        pytest.param([waiver(OPENSSL)], 3, PYPI, DEBIAN, f"not waived: {CRYPTOGRAPHY};", id="debian-waived"),
        pytest.param([waiver(CRYPTOGRAPHY)], 3, DEBIAN, PYPI, f"not waived: {OPENSSL};", id="pypi-waived"),
        pytest.param([waiver(OPENSSL), waiver(CRYPTOGRAPHY)], 0, set(), DEBIAN | PYPI, "", id="both-waived"),
        pytest.param(
            [waiver(OPENSSL), waiver(CRYPTOGRAPHY, expires=YESTERDAY)],
            3,
            PYPI,
            DEBIAN,
            f"expired waivers: {CRYPTOGRAPHY} (expired {YESTERDAY})",
            id="expired-waiver-suppresses-nothing",
        ),
    ],
)
def test_scan_gates_on_unwaived_high_findings(scan_image, trivy_cache, tmp_path, waivers, code, found, waived, says):
    done, reports = run_scan(scan_image, tmp_path, trivy_cache, waivers)
    assert done.returncode == code, done.stderr
    assert reported(reports / "vulnerabilities.json") == (found, waived)
    assert {line.split()[0] for line in done.stdout.splitlines()} == {vuln for vuln, _ in found}
    if code:
        error = done.stderr.splitlines()[-1]
        assert error.startswith("pipeline error: "), done.stderr
        assert says in error, done.stderr
    else:
        assert "no HIGH or CRITICAL finding" in done.stderr
    for vuln, package in waived:
        assert f"waived {vuln} in {package} until 2999-12-31: tested waiver" in done.stderr


@pytest.mark.parametrize(
    ("waivers", "says"),
    [
        pytest.param(
            [waiver(OPENSSL), waiver(CRYPTOGRAPHY, statement=None)],
            f"vulnerabilities[1] ({CRYPTOGRAPHY}) has no statement",
            id="no-statement",
        ),
        pytest.param(
            [waiver(OPENSSL, statement="  ")], f"vulnerabilities[0] ({OPENSSL}) has no statement", id="blank-statement"
        ),
        pytest.param(
            [waiver(CRYPTOGRAPHY, expires=None)], f"vulnerabilities[0] ({CRYPTOGRAPHY}) has no expired_at", id="no-date"
        ),
        pytest.param(
            [waiver(CRYPTOGRAPHY, expires="soon")], f"({CRYPTOGRAPHY}) has no expired_at date", id="date-not-a-date"
        ),
    ],
)
def test_scan_refuses_a_waiver_without_reason_or_expiry(scan_image, trivy_cache, tmp_path, waivers, says):
    done, reports = run_scan(scan_image, tmp_path, trivy_cache, waivers)
    assert_refused(done, 2, says)
    assert not reports.exists(), "Trivy ran although the allow-list was refused"


def test_scan_refuses_a_layout_holding_another_digest(scan_image, trivy_cache, tmp_path):
    other = "sha256:" + "0" * 64
    done, reports = run_scan(scan_image, tmp_path, trivy_cache, [], digest=other)
    assert_refused(done, 2, f"holds ['{scan_image.digest}'], not {other}")
    assert not reports.exists()


@pytest.mark.parametrize(
    ("database", "says"),
    [
        pytest.param(None, "--skip-db-update cannot be specified on the first run", id="no-database"),
        pytest.param(b"not a bolt database" * 4096, "invalid database", id="corrupt-database"),
    ],
)
def test_scan_tells_trivys_own_error_from_a_finding(scan_image, trivy_cache, tmp_path, database, says):
    cache = tmp_path / "cache"
    (cache / "db").mkdir(parents=True)
    if database is not None:
        (cache / "db" / "trivy.db").write_bytes(database)
        shutil.copy(trivy_cache / "db" / "metadata.json", cache / "db" / "metadata.json")
    done, _ = run_scan(scan_image, tmp_path, cache, [])
    assert_refused(done, 1, says)
    assert "this is Trivy's own error, not a finding" in done.stderr


def test_scan_sbom_lists_the_image_packages(scan_image, trivy_cache, tmp_path):
    done, reports = run_scan(scan_image, tmp_path, trivy_cache, [waiver(OPENSSL), waiver(CRYPTOGRAPHY)])
    assert done.returncode == 0, done.stderr
    sbom = json.loads((reports / "sbom.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    purls = {component.get("purl", "") for component in sbom["components"]}
    pins = pinned()
    for name in ("cryptography", "sanic", "sanic-ext", "tortoise-orm", "pyjwt", "pydantic", "pyyaml"):
        assert f"pkg:pypi/{name}@{pins[name]}" in purls, name
    # Every other Python package of the image is a pinned one too, at its pin; the app is itself.
    python = {purl.removeprefix("pkg:pypi/") for purl in purls if purl.startswith("pkg:pypi/")}
    app = (
        "catalog@"
        + tomllib.loads((REPO_ROOT / "apps" / "catalog" / "pyproject.toml").read_text())["project"]["version"]
    )
    assert app in python
    unpinned = {entry for entry in python - {app} if pins.get(entry.split("@")[0]) != entry.split("@")[1]}
    assert not unpinned
    debian = {purl.split("@")[0] for purl in purls if purl.startswith("pkg:deb/debian/")}
    assert {"pkg:deb/debian/libssl3", "pkg:deb/debian/openssl", "pkg:deb/debian/python3.11"} <= debian
