"""`pipeline rollback` against a bare git remote: a revert of the environment's last pin commit, or
of the promotion merge (`-m 1`), pushed; refused when there is nothing of its own to revert."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitops.steps_cli import SeededRemote, assert_refused, race, random_digest, steps

pytestmark = pytest.mark.gitops


def rollback(remote: SeededRemote, env: str, home: Path):
    return steps("rollback", "--remote", remote.url, "--env", env, home=home)


def _after_two_pins(remote: SeededRemote, home: Path) -> tuple[str, str]:
    """dev pinned twice, then staging once: rollback looks for dev's last change, not the last commit."""
    remote.commit_pin("dev", random_digest())
    last = remote.commit_pin("dev", random_digest())
    remote.commit_pin("staging", random_digest())
    return "dev", last


def _after_a_promotion_merge(remote: SeededRemote, home: Path) -> tuple[str, str]:
    remote.commit_pin("dev", random_digest())
    promoted = steps("promote", "--remote", remote.url, "--from", "dev", "--to", "staging", "--force", home=home)
    assert promoted.returncode == 0, promoted.stderr
    merge = remote.merge(promoted.stdout.strip())
    assert remote.pin("staging") == remote.pin("dev")
    return "staging", merge


@pytest.mark.parametrize(
    "history",
    [pytest.param(_after_two_pins, id="pin-commit"), pytest.param(_after_a_promotion_merge, id="promotion-merge")],
)
def test_rollback_reverts_the_environments_last_change(history, seeded_remote: SeededRemote, steps_home: Path) -> None:
    env, reverted = history(seeded_remote, steps_home)
    tip = seeded_remote.head()
    pins_before = {name: seeded_remote.pin(name, f"{reverted}^1") for name in ("dev", "staging", "prod")}
    pins_at_tip = {name: seeded_remote.pin(name) for name in ("dev", "staging", "prod")}

    done = rollback(seeded_remote, env, steps_home)

    assert done.returncode == 0, done.stderr
    revert = done.stdout.strip()
    assert seeded_remote.first_parents()[:2] == [revert, tip]
    assert seeded_remote.bare_git("rev-list", "--parents", "-1", revert).split() == [revert, tip]
    assert seeded_remote.subject(revert) == f'Revert "{seeded_remote.subject(reverted)}"'
    assert seeded_remote.changed_files(revert) == [f"environments/{env}/image.yaml"]
    assert {name: seeded_remote.pin(name) for name in pins_at_tip} == {**pins_at_tip, env: pins_before[env]}


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

    assert_refused(done, 1, says)
    assert seeded_remote.refs() == refs


def test_two_rollbacks_at_once_both_land(seeded_remote: SeededRemote, steps_home: Path, tmp_path: Path) -> None:
    """dev's and staging's rollbacks collide on main: the loser rebases and pushes again."""
    seeded = {env: seeded_remote.pin(env) for env in ("dev", "staging")}
    for env in seeded:
        seeded_remote.commit_pin(env, random_digest())
    tip = seeded_remote.head()

    results = race([["rollback", "--remote", seeded_remote.url, "--env", env] for env in seeded], steps_home, tmp_path)

    assert [code for code, _, _ in results] == [0, 0], results
    rejected = [index for index, (_, _, err) in enumerate(results) if "push rejected: main moved" in err]
    assert len(rejected) == 1, results
    loser, winner = rejected[0], 1 - rejected[0]
    assert "rebased onto origin/main at " in results[loser][2]
    reverts = [out.strip() for _, out, _ in results]
    assert seeded_remote.first_parents()[:3] == [reverts[loser], reverts[winner], tip]
    assert {env: seeded_remote.pin(env) for env in seeded} == seeded
