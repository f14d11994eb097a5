"""The pipeline's step image (argo-workflows/image), built with buildah as argo-workflows/image/build.sh
builds it and run with podman the way a workflow pod runs it (uid 1000): the pinned tools are the
ones from .tools/bin, newuidmap/newgidmap carry file capabilities instead of the setuid bit, and
buildah makes its own user namespace with the full subordinate range, unless the capabilities
those helpers need are gone from the bounding set; and the scan step runs there with no network."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.container.podman import build_steps_image, podman, session_labels
from tests.support.tiers import skip_or_fail
from tests.support.trivydb import CRYPTOGRAPHY, OPENSSL, write_database
from tools.cluster.toolbox import missing, tool

pytestmark = pytest.mark.container


@pytest.fixture(scope="module")
def steps_image() -> str:
    return build_steps_image()


def _run(image: str, *command: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return podman("run", "--rm", *session_labels(), *options, image, *command, check=False)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("cosign", "version"), id="cosign"),
        pytest.param(("crane", "version"), id="crane"),
        pytest.param(("kubectl", "version", "--client"), id="kubectl"),
        pytest.param(("trivy", "--version"), id="trivy"),
    ],
)
def test_pinned_tools_are_the_ones_from_tools_bin(steps_image, command):
    host = subprocess.run([tool(command[0]), *command[1:]], capture_output=True, text=True, check=True)

    inside = _run(steps_image, *command)

    assert inside.returncode == 0, inside.stderr
    assert inside.stdout == host.stdout


@pytest.mark.parametrize(
    ("command", "output"),
    [
        pytest.param(("id", "-u"), "1000", id="runs-as-1000"),
        pytest.param(("buildah", "--version"), "buildah version 1.28.2", id="buildah"),
        pytest.param(("git", "--version"), "git version 2.39", id="git"),
        pytest.param(("python3", "-c", "import yaml; print(yaml.__version__)"), "6.0", id="python3-yaml"),
        pytest.param(("python3", "-m", "pipeline", "--help"), "usage: pipeline", id="steps-cli"),
        pytest.param(
            ("getcap", "/usr/bin/newuidmap", "/usr/bin/newgidmap"),
            "/usr/bin/newuidmap cap_setuid=ep\n/usr/bin/newgidmap cap_setgid=ep",
            id="file-capabilities",
        ),
        # Not setuid: a setuid helper runs as uid 0, which does not own buildah's user namespace.
        pytest.param(
            ("stat", "-c", "%A", "/usr/bin/newuidmap", "/usr/bin/newgidmap"), "-rwxr-xr-x\n-rwxr-xr-x", id="no-setuid"
        ),
    ],
)
def test_step_image_holds(steps_image, command, output):
    result = _run(steps_image, *command)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(output)


@pytest.mark.parametrize(
    ("options", "uid_map"),
    [
        # What the build pod has: uid 1000, the runtime's default capabilities, nothing added.
        pytest.param((), [["0", "1000", "1"], ["1", "100000", "65536"]], id="default-capabilities"),
        # Without CAP_SETUID/CAP_SETGID in the bounding set the file capabilities cannot take effect.
        pytest.param(("--cap-drop", "SETUID,SETGID"), [["0", "1000", "1"]], id="setuid-setgid-dropped"),
    ],
)
def test_rootless_buildah_gets_the_subordinate_range(steps_image, options, uid_map):
    result = _run(steps_image, "buildah", "unshare", "cat", "/proc/self/uid_map", options=options)

    assert result.returncode == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()] == uid_map


def test_scan_step_runs_in_the_image_without_a_network(steps_image, catalog_image, tmp_path):
    """The scan as the pod runs it: uid 1000, the workspace's layout, the cache volume holding the
    database, and no network at all: with --skip-db-update nothing else may need one."""
    if missing(["trivy-testdb"]):
        skip_or_fail("the scan needs `make tools` (.tools/bin lacks trivy-testdb)")
    work = tmp_path / "work"
    shutil.copytree(catalog_image.layout, work / "oci")
    (work / "allow.yaml").write_text(
        f"vulnerabilities:\n  - id: {OPENSSL}\n    statement: t\n    expired_at: 2999-12-31\n"
    )
    write_database(work / "cache")
    subprocess.run(["chown", "-R", "1000:1000", str(work)], check=True)

    result = _run(
        steps_image,
        *("python3", "-m", "pipeline", "scan", "--layout", "/work/oci", "--allow-list", "/work/allow.yaml"),
        *("--image", f"localhost/catalog@{catalog_image.digest}", "--reports", "/work/reports"),
        *("--skip-db-update", "--cache-dir", "/work/cache"),
        options=("--network", "none", "--volume", f"{work}:/work"),
    )

    assert result.returncode == 3, result.stderr
    assert [line.split()[:3] for line in result.stdout.splitlines()] == [[CRYPTOGRAPHY, "HIGH", "cryptography"]]
    assert {path.name for path in (work / "reports").iterdir()} == {"sbom.cdx.json", "vulnerabilities.json"}
