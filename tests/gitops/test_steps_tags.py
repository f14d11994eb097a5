"""`pipeline tags`: the short SHA always, X.Y.Z only when HEAD is exactly at vX.Y.Z, latest only for dev."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.gitops.remote import git
from tests.gitops.steps_cli import steps
from tests.support.tiers import skip_or_fail

pytestmark = pytest.mark.gitops


def source_checkout(directory: Path, tags_at_head: list[str], tags_before: list[str]) -> str:
    """A checkout with two commits: `tags_before` on the first, `tags_at_head` on HEAD. Returns HEAD."""
    directory.mkdir()
    git("init", "--quiet", "--initial-branch=main", directory, cwd=directory.parent)
    for number, names in enumerate((tags_before, tags_at_head)):
        (directory / "file").write_text(f"{number}\n")
        git("add", "file", cwd=directory)
        git("commit", "--quiet", "-m", f"commit {number}", cwd=directory)
        for name in names:
            git("tag", "--annotate", "-m", name, name, cwd=directory)
    return git("rev-parse", "HEAD", cwd=directory)


@pytest.mark.parametrize(
    ("at_head", "before", "env", "expected"),
    [
        pytest.param([], [], "dev", ["{sha}", "latest"], id="untagged-dev"),
        pytest.param([], [], "staging", ["{sha}"], id="untagged-staging"),
        pytest.param(["v1.4.0"], [], "dev", ["{sha}", "1.4.0", "latest"], id="tagged-dev"),
        pytest.param(["v1.4.0"], [], "prod", ["{sha}", "1.4.0"], id="tagged-prod"),
        pytest.param([], ["v1.3.0"], "dev", ["{sha}", "latest"], id="tag-on-an-older-commit-dev"),
        pytest.param([], ["v1.3.0"], "staging", ["{sha}"], id="tag-on-an-older-commit-staging"),
        pytest.param(["v1.4", "release-2", "1.5.0", "v01.2.3"], [], "prod", ["{sha}"], id="not-vX.Y.Z-ignored"),
        pytest.param(["v2.0.0", "v2.0.1"], [], "staging", ["{sha}", "2.0.1", "2.0.0"], id="two-versions-newest-first"),
    ],
)
def test_tags_for_head(
    at_head: list[str], before: list[str], env: str, expected: list[str], tmp_path: Path, steps_home: Path
) -> None:
    head = source_checkout(tmp_path / "source", at_head, before)
    done = steps("tags", "--source-dir", str(tmp_path / "source"), "--env", env, home=steps_home)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [tag.format(sha=head[:12]) for tag in expected]


def test_tags_of_a_checkout_another_user_owns(tmp_path: Path, steps_home: Path) -> None:
    """A workspace volume written by another step's user: git's ownership check must not stop the step."""
    if os.geteuid() != 0:
        skip_or_fail("handing the checkout to another user needs root")
    head = source_checkout(tmp_path / "source", ["v2.1.0"], [])
    for path in [tmp_path / "source", *(tmp_path / "source").rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    done = steps("tags", "--source-dir", str(tmp_path / "source"), "--env", "prod", home=steps_home)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [head[:12], "2.1.0"]
