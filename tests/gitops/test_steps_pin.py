"""`pipeline pin` against a real bare git remote and a real registry with real cosign signatures:
the pin file it writes, the images it refuses (nothing pushed), the no-op, and two pins racing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.gitops.steps_cli import SeededRemote, assert_refused, race, steps
from tests.support.registry import LocalRegistry, cosign_keypair, cosign_sign, crane, push_tiny_image

pytestmark = pytest.mark.gitops

SOURCE = "5d41402abc4b2a76b9719d911017c592ae2f1c3b"


def new_image(registry: LocalRegistry, scratch: Path, tag: str, key: Path | None) -> str:
    """A fresh image pushed as catalog:<tag>, signed with `key` unless None: repository@digest."""
    digest = push_tiny_image(f"{registry.host}/catalog:{tag}", datetime.now(UTC), scratch)
    reference = f"{registry.host}/catalog@{digest}"
    if key is not None:
        cosign_sign(reference, key)
    return reference


def pin_args(remote: SeededRemote, env: str, image: str, public_key: Path, *extra: str) -> list[str]:
    return [
        "pin", "--remote", remote.url, "--env", env, "--image", image, "--tag", "0.2.0",
        "--source-commit", SOURCE, "--public-key", str(public_key), *extra,
    ]  # fmt: skip


def test_pin_writes_the_four_keys_under_the_header_in_one_commit(
    local_registry: LocalRegistry, cosign_keys, seeded_remote: SeededRemote, steps_home: Path, tmp_path: Path
) -> None:
    image = new_image(local_registry, tmp_path, "a1", cosign_keys[0])
    repository, digest = image.split("@")
    before = seeded_remote.show("environments/dev/image.yaml")
    others = {env: seeded_remote.show(f"environments/{env}/image.yaml") for env in ("staging", "prod")}

    done = steps(*pin_args(seeded_remote, "dev", image, cosign_keys[1]), home=steps_home)

    assert done.returncode == 0, done.stderr
    pushed = done.stdout.strip()
    assert seeded_remote.first_parents() == [pushed, seeded_remote.seed]
    assert seeded_remote.subject(pushed) == f"pin dev to {digest}"
    assert seeded_remote.changed_files(pushed) == ["environments/dev/image.yaml"]
    header = "".join(line + "\n" for line in before.splitlines() if line.startswith("#"))
    assert header.count("\n") >= 2
    assert seeded_remote.show("environments/dev/image.yaml") + "\n" == (
        f"{header}image:\n  repository: {repository}\n  digest: {digest}\n  tag: 0.2.0\n  sourceCommit: {SOURCE}\n"
    )
    assert {env: seeded_remote.show(f"environments/{env}/image.yaml") for env in others} == others


def _unsigned(registry: LocalRegistry, scratch: Path, key: Path) -> str:
    return new_image(registry, scratch, "unsigned", None)


def _signed_with_another_key(registry: LocalRegistry, scratch: Path, key: Path) -> str:
    other, _ = cosign_keypair(scratch)
    return new_image(registry, scratch, "other-key", other)


def _carrying_another_digests_signature(registry: LocalRegistry, scratch: Path, key: Path) -> str:
    """A valid signature by the right key, copied onto this image's signature tag: it names the other digest."""
    signed = new_image(registry, scratch, "signed", key).split("@")[1]
    image = new_image(registry, scratch, "tampered", None)
    digest = image.split("@")[1]
    repository = f"{registry.host}/catalog"
    crane("copy", f"{repository}:{signed.replace(':', '-')}.sig", f"{repository}:{digest.replace(':', '-')}.sig")
    return image


@pytest.mark.parametrize(
    "make_image",
    [
        pytest.param(_unsigned, id="unsigned"),
        pytest.param(_signed_with_another_key, id="signed-by-another-key"),
        pytest.param(_carrying_another_digests_signature, id="signature-of-another-digest"),
    ],
)
def test_pin_refuses_an_image_that_does_not_verify_and_pushes_nothing(
    make_image,
    local_registry: LocalRegistry,
    cosign_keys,
    seeded_remote: SeededRemote,
    steps_home: Path,
    tmp_path: Path,
) -> None:
    image = make_image(local_registry, tmp_path, cosign_keys[0])
    refs = seeded_remote.refs()

    done = steps(*pin_args(seeded_remote, "dev", image, cosign_keys[1]), home=steps_home)

    assert_refused(done, 1, f"cosign verify refused {image}")
    assert seeded_remote.refs() == refs


def test_pin_of_the_digest_already_pinned_commits_nothing(
    local_registry: LocalRegistry, cosign_keys, seeded_remote: SeededRemote, steps_home: Path, tmp_path: Path
) -> None:
    image = new_image(local_registry, tmp_path, "a1", cosign_keys[0])
    first = steps(*pin_args(seeded_remote, "dev", image, cosign_keys[1]), home=steps_home)
    assert first.returncode == 0, first.stderr
    refs = seeded_remote.refs()

    again = steps(*pin_args(seeded_remote, "dev", image, cosign_keys[1]), home=steps_home)

    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == first.stdout.strip() == seeded_remote.head()
    assert f"dev already pins {image.split('@')[1]} on main; nothing to commit" in again.stderr
    assert seeded_remote.refs() == refs


def test_pin_refuses_an_environment_the_branch_does_not_have(
    local_registry: LocalRegistry, cosign_keys, seeded_remote: SeededRemote, steps_home: Path, tmp_path: Path
) -> None:
    image = new_image(local_registry, tmp_path, "a1", cosign_keys[0])
    refs = seeded_remote.refs()
    done = steps(*pin_args(seeded_remote, "qa", image, cosign_keys[1]), home=steps_home)
    assert_refused(done, 2, "argument --env: environments/qa/image.yaml is not on main; add the environment first")
    assert seeded_remote.refs() == refs


@pytest.mark.parametrize(
    ("envs", "after_rejection"),
    [
        pytest.param(("dev", "dev"), "rebase onto origin/main conflicted; reset to it", id="same-env"),
        pytest.param(("dev", "staging"), "rebased onto origin/main at ", id="different-envs"),
    ],
)
def test_two_pins_at_once_both_land_in_order(
    envs: tuple[str, str],
    after_rejection: str,
    local_registry: LocalRegistry,
    cosign_keys,
    seeded_remote: SeededRemote,
    steps_home: Path,
    tmp_path: Path,
) -> None:
    images = [new_image(local_registry, tmp_path, tag, cosign_keys[0]) for tag in ("one", "two")]

    results = race(
        [pin_args(seeded_remote, env, image, cosign_keys[1]) for env, image in zip(envs, images, strict=True)],
        steps_home,
        tmp_path,
    )

    assert [code for code, _, _ in results] == [0, 0], results
    # The retry path ran: exactly one push was rejected, then fetch + rebase and a second push.
    rejected = [index for index, (_, _, err) in enumerate(results) if "push rejected: main moved" in err]
    assert len(rejected) == 1, results
    assert sum(err.count("push rejected") for _, _, err in results) == 1
    loser = rejected[0]
    winner = 1 - loser
    assert after_rejection in results[loser][2]
    # Both commits are on main, the loser's on top of the winner's: nothing lost, in push order.
    pushed = [out.strip() for _, out, _ in results]
    assert seeded_remote.first_parents() == [pushed[loser], pushed[winner], seeded_remote.seed]
    for index in (winner, loser):
        digest = images[index].split("@")[1]
        assert seeded_remote.subject(pushed[index]) == f"pin {envs[index]} to {digest}"
        assert seeded_remote.changed_files(pushed[index]) == [f"environments/{envs[index]}/image.yaml"]
        assert seeded_remote.pin(envs[index], pushed[index])["digest"] == digest
    final = {env: seeded_remote.pin(env)["digest"] for env in set(envs)}
    if envs[0] == envs[1]:
        assert final == {envs[0]: images[loser].split("@")[1]}
    else:
        assert final == {env: image.split("@")[1] for env, image in zip(envs, images, strict=True)}


def test_two_pins_at_once_with_one_attempt_one_fails_and_nothing_is_half_pushed(
    local_registry: LocalRegistry, cosign_keys, seeded_remote: SeededRemote, steps_home: Path, tmp_path: Path
) -> None:
    images = [new_image(local_registry, tmp_path, tag, cosign_keys[0]) for tag in ("one", "two")]

    results = race(
        [
            pin_args(seeded_remote, env, image, cosign_keys[1], "--attempts", "1")
            for env, image in zip(("dev", "staging"), images, strict=True)
        ],
        steps_home,
        tmp_path,
    )

    assert sorted(code for code, _, _ in results) == [0, 1], results
    winner = next(index for index, (code, _, _) in enumerate(results) if code == 0)
    loser_err = results[1 - winner][2]
    assert loser_err.splitlines()[-1] == (
        "pipeline error: git push to main still rejected after 1 attempts; run the step again or raise --attempts"
    )
    assert seeded_remote.first_parents() == [results[winner][1].strip(), seeded_remote.seed]
