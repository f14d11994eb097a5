"""Every bad argument of `python3 -m pipeline`: exit 2 and one line on stderr that names the
argument and the fix; a step that cannot do its work: exit 1, one line. Never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitops.steps_cli import SeededRemote, assert_refused, steps
from tools.cluster.toolbox import free_port

pytestmark = pytest.mark.gitops

DIGEST = "sha256:" + "ab" * 32
COMMIT = "5d41402abc4b2a76b9719d911017c592ae2f1c3b"
REMOTE = "file:///nonexistent/platform.git"
PIN = ["pin", "--remote", REMOTE, "--env", "dev", "--tag", "1.0.0", "--source-commit", COMMIT]
CLEANUP = ["cleanup", "--remote", REMOTE, "--registry", "127.0.0.1:5000", "--repository", "catalog"]


# The repository's own allow-list: it must pass the checks that come before Trivy.
SCAN = ["scan", "--allow-list", "{repo}/apps/catalog/.trivyignore.yaml", "--reports", "{tmp}/reports"]


def scan(*, layout: str = "{tmp}", image: str = f"registry:5000/catalog@{DIGEST}", **more: str) -> list[str]:
    return [*SCAN, "--layout", layout, "--image", image, *(f"--{k.replace('_', '-')}={v}" for k, v in more.items())]


def pin(*, image: str = f"registry:5000/catalog@{DIGEST}", key: str = "{key}", **changed: str) -> list[str]:
    args = [*PIN, "--image", image, "--public-key", key]
    for option, value in changed.items():
        flag = "--" + option.replace("_", "-")
        args[args.index(flag) + 1] = value
    return args


@pytest.mark.parametrize(
    ("args", "names"),
    [
        pytest.param([], "COMMAND", id="no-command"),
        pytest.param(["deploy"], "invalid choice: 'deploy'", id="unknown-command"),
        pytest.param(["tags", "--env", "dev"], "--source-dir", id="tags-missing-source"),
        pytest.param(["tags", "--source-dir", "{repo}", "--env", "Dev!"], "--env", id="tags-bad-env"),
        pytest.param(["tags", "--source-dir", "{tmp}", "--env", "dev"], "--source-dir", id="tags-not-a-checkout"),
        pytest.param(["tags", "--source-dir", "{repo}", "--env", "dev", "--bogus"], "--bogus", id="unknown-option"),
        pytest.param(pin(image="registry:5000/catalog:1.0.0"), "--image", id="pin-image-by-tag"),
        pytest.param(pin(image="registry:5000/catalog@sha256:abc"), "--image", id="pin-short-digest"),
        pytest.param(pin(image=f"catalog@{DIGEST}"), "--image", id="pin-image-without-registry"),
        pytest.param(pin(tag="bad tag"), "--tag", id="pin-bad-tag"),
        pytest.param(pin(source_commit="abc123"), "--source-commit", id="pin-short-commit"),
        pytest.param(pin(key="{tmp}/missing.pub"), "--public-key", id="pin-missing-key"),
        pytest.param([*pin(), "--attempts", "0"], "--attempts", id="pin-zero-attempts"),
        pytest.param([*pin(), "--branch", "a..b"], "--branch", id="pin-bad-branch"),
        pytest.param(pin(remote=""), "--remote", id="pin-empty-remote"),
        pytest.param(["promote", "--remote", REMOTE, "--from", "dev", "--to", "dev"], "--to", id="promote-same"),
        pytest.param(["promote", "--remote", REMOTE, "--from", "prod", "--to", "staging"], "--to", id="promote-back"),
        pytest.param(["promote", "--remote", REMOTE, "--from", "dev", "--to", "qa"], "--to", id="promote-unknown"),
        pytest.param(["promote", "--remote", REMOTE, "--from", "dev", "--to", "prod"], "--to", id="promote-skip"),
        pytest.param(["rollback", "--remote", REMOTE], "--env", id="rollback-missing-env"),
        pytest.param([*CLEANUP, "--keep-semver", "-1", "--keep-days", "7"], "--keep-semver", id="cleanup-negative"),
        pytest.param([*CLEANUP, "--keep-semver", "3", "--keep-days", "a week"], "--keep-days", id="cleanup-days"),
        pytest.param(
            [
                "cleanup",
                "--remote",
                REMOTE,
                "--registry",
                "http://registry:5000",
                "--repository",
                "catalog",
                "--keep-semver",
                "3",
                "--keep-days",
                "7",
            ],
            "--registry",
            id="cleanup-registry-url",
        ),
        pytest.param(
            [
                "cleanup",
                "--remote",
                REMOTE,
                "--registry",
                "registry:5000",
                "--repository",
                "Catalog",
                "--keep-semver",
                "3",
                "--keep-days",
                "7",
            ],
            "--repository",
            id="cleanup-uppercase-repository",
        ),
        pytest.param(scan(image="registry:5000/catalog:1.0.0"), "--image", id="scan-image-by-tag"),
        pytest.param(scan(allow_list="{tmp}/missing.yaml"), "--allow-list", id="scan-missing-allow-list"),
        pytest.param(scan(allow_list="{repo}/README.md"), "must end in .yaml", id="scan-allow-list-not-yaml"),
        pytest.param(scan(db_repository="https://mirror.example/db"), "--db-repository", id="scan-db-url"),
        pytest.param(scan(), "--layout: {tmp} has no index.json", id="scan-layout-not-oci"),
        pytest.param(scan()[:3] + scan()[5:], "--reports", id="scan-no-reports"),
    ],
)
def test_bad_argument_is_one_line_and_exit_2(args: list[str], names: str, tmp_path: Path, steps_home: Path) -> None:
    key = tmp_path / "cosign.pub"
    key.write_text("not checked before the arguments are\n")
    values = {"key": str(key), "tmp": str(tmp_path), "repo": str(Path(__file__).resolve().parents[2])}
    done = steps(*(arg.format(**values) for arg in args), home=steps_home)

    assert_refused(done, 2, names.format(**values))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        pytest.param(
            ["rollback", "--remote", REMOTE, "--env", "dev"],
            f"git clone of {REMOTE} (branch main) failed",
            id="remote-unreachable",
        ),
        pytest.param(
            [
                "cleanup",
                "--remote",
                "{remote}",
                "--registry",
                "127.0.0.1:{port}",
                "--repository",
                "catalog",
                "--keep-semver",
                "1",
                "--keep-days",
                "1",
            ],
            "cannot list the tags of 127.0.0.1:{port}/catalog",
            id="registry-unreachable",
        ),
    ],
)
def test_failed_step_is_one_line_and_exit_1(
    args: list[str], says: str, seeded_remote: SeededRemote, steps_home: Path
) -> None:
    values = {"remote": seeded_remote.url, "port": str(free_port())}  # a port nothing listens on
    done = steps(*(arg.format(**values) for arg in args), home=steps_home)

    assert_refused(done, 1, says.format(**values))
