"""`pipeline rollback` against a bare git remote: a revert of the environment's last pin commit, or
of the promotion merge (`-m 1`), pushed; refused when there is nothing of its own to revert."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitops.steps_cli import SeededRemote, random_digest, steps

pytestmark = pytest.mark.gitops


def rollback(remote: SeededRemote, env: str, home: Path):
    return steps("rollback", "--remote", remote.url, "--env", env, home=home)


def test_rollback_reverts_the_environments_last_pin_commit(seeded_remote: SeededRemote, steps_home: Path) -> None:
    seeded_remote.commit_pin("dev", random_digest())
    before = seeded_remote.pin("dev")
    last_pin = seeded_remote.commit_pin("dev", random_digest())
    # A later commit for another environment: rollback looks for dev's last change, not the last commit.
    staging = seeded_remote.commit_pin("staging", random_digest())

    done = rollback(seeded_remote, "dev", steps_home)

    assert done.returncode == 0, done.stderr
    revert = done.stdout.strip()
    assert seeded_remote.first_parents()[:2] == [revert, staging]
    assert seeded_remote.subject(revert) == f'Revert "{seeded_remote.subject(last_pin)}"'
    assert seeded_remote.changed_files(revert) == ["environments/dev/image.yaml"]
    assert seeded_remote.pin("dev") == before
    assert seeded_remote.pin("staging") == seeded_remote.pin("staging", staging)


def test_rollback_reverts_a_promotion_merge(seeded_remote: SeededRemote, steps_home: Path) -> None:
    seeded_remote.commit_pin("dev", random_digest())
    before = seeded_remote.pin("staging")
    promoted = steps("promote", "--remote", seeded_remote.url, "--from", "dev", "--to", "staging", "--force",
                     home=steps_home)  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    merge = seeded_remote.merge(promoted.stdout.strip())
    assert seeded_remote.pin("staging") == seeded_remote.pin("dev") != before

    done = rollback(seeded_remote, "staging", steps_home)

    assert done.returncode == 0, done.stderr
    revert = done.stdout.strip()
    assert seeded_remote.first_parents()[:2] == [revert, merge]
    assert seeded_remote.subject(revert) == f'Revert "{seeded_remote.subject(merge)}"'
    assert seeded_remote.changed_files(revert) == ["environments/staging/image.yaml"]
    assert seeded_remote.pin("staging") == before


@pytest.mark.parametrize(
    ("change", "says"),
    [
        pytest.param(None, "environments/dev/image.yaml has not changed since the first commit", id="only-the-seed"),
        pytest.param(
            "values", "changes environments/dev/values.yaml besides environments/dev/image.yaml", id="mixed-commit"
        ),
    ],
)
def test_rollback_refuses_what_is_not_a_pin_of_its_own(
    change: str | None, says: str, seeded_remote: SeededRemote, steps_home: Path
) -> None:
    if change == "values":
        for name in ("image.yaml", "values.yaml"):
            path = seeded_remote.work / "environments" / "dev" / name
            path.write_text(path.read_text() + "# edited by hand\n")
        seeded_remote.git("commit", "--quiet", "-am", "dev: by hand")
        seeded_remote.git("push", "--quiet", "origin", "HEAD:main")
    refs = seeded_remote.refs()

    done = rollback(seeded_remote, "dev", steps_home)

    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert says in done.stderr
    assert seeded_remote.refs() == refs
