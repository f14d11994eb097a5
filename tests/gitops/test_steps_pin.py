"""`pipeline pin` against a real bare git remote and a real registry with real cosign signatures:
the pin file it writes, the images it refuses (nothing pushed), the no-op, and two pins racing."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.gitops.steps_cli import SeededRemote, assert_refused, race, steps
from tests.support.registry import cosign_keypair, cosign_sign, push_tiny_image
from tools.cluster.registry import LocalRegistry, crane
from tools.cluster.toolbox import TOOLS_BIN

pytestmark = pytest.mark.gitops

SOURCE = "5d41402abc4b2a76b9719d911017c592ae2f1c3b"


@dataclass
class Pinning:
    """What a pin talks to: the registry, the platform's key pair, the git remote."""

    registry: LocalRegistry
    keys: tuple[Path, Path]
    remote: SeededRemote
    home: Path
    scratch: Path

    def image(self, tag: str, *, key: Path | str | None = "platform") -> str:
        """A fresh image pushed as catalog:<tag>, signed with the platform's key (or `key`, or
        unsigned for None): repository@digest."""
        digest = push_tiny_image(f"{self.registry.host}/catalog:{tag}", datetime.now(UTC), self.scratch)
        reference = f"{self.registry.host}/catalog@{digest}"
        signer = self.keys[0] if key == "platform" else key
        if isinstance(signer, Path):
            cosign_sign(reference, signer)
        return reference

    def args(self, env: str, image: str, *extra: str) -> list[str]:
        return [
            "pin", "--remote", self.remote.url, "--env", env, "--image", image, "--tag", "0.2.0",
            "--source-commit", SOURCE, "--public-key", str(self.keys[1]), *extra,
        ]  # fmt: skip

    def pin(self, env: str, image: str) -> subprocess.CompletedProcess[str]:
        return steps(*self.args(env, image), home=self.home)


@pytest.fixture
def pinning(
    local_registry: LocalRegistry, cosign_keys, seeded_remote: SeededRemote, steps_home: Path, tmp_path: Path
) -> Pinning:
    return Pinning(local_registry, cosign_keys, seeded_remote, steps_home, tmp_path)


def test_pin_writes_the_four_keys_under_the_header_in_one_commit(pinning: Pinning) -> None:
    remote = pinning.remote
    image = pinning.image("a1")
    repository, digest = image.split("@")
    before = remote.show("environments/dev/image.yaml")
    others = {env: remote.show(f"environments/{env}/image.yaml") for env in ("staging", "prod")}

    done = pinning.pin("dev", image)

    assert done.returncode == 0, done.stderr
    pushed = done.stdout.strip()
    assert remote.first_parents() == [pushed, remote.seed]
    assert remote.subject(pushed) == f"pin dev to {digest}"
    assert remote.changed_files(pushed) == ["environments/dev/image.yaml"]
    header = "".join(line + "\n" for line in before.splitlines() if line.startswith("#"))
    assert header.count("\n") >= 2
    assert remote.show("environments/dev/image.yaml") + "\n" == (
        f"{header}image:\n  repository: {repository}\n  digest: {digest}\n  tag: 0.2.0\n  sourceCommit: {SOURCE}\n"
    )
    assert {env: remote.show(f"environments/{env}/image.yaml") for env in others} == others


def _unsigned(pinning: Pinning) -> str:
    return pinning.image("unsigned", key=None)


def _signed_with_another_key(pinning: Pinning) -> str:
    other, _ = cosign_keypair(pinning.scratch)
    return pinning.image("other-key", key=other)


def _carrying_another_digests_signature(pinning: Pinning) -> str:
    """A valid signature by the right key, copied onto this image's signature tag: it names the other digest."""
    signed = pinning.image("signed").split("@")[1]
    image = pinning.image("tampered", key=None)
    digest = image.split("@")[1]
    repository = f"{pinning.registry.host}/catalog"
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
def test_pin_refuses_an_image_that_does_not_verify_and_pushes_nothing(make_image, pinning: Pinning) -> None:
    image = make_image(pinning)
    refs = pinning.remote.refs()

    done = pinning.pin("dev", image)

    assert_refused(done, 1, f"cosign verify refused {image}")
    assert pinning.remote.refs() == refs


# A cosign that verified the image but printed something else: real cosign never does (it checks
# the payload's digest itself), so a wrapper around it stands in for a changed or broken version.
# pin must still refuse rather than trust an exit code it cannot read back.
COSIGN_PRINTS = {
    "another-digest": "sed 's/sha256:[0-9a-f]\\{64\\}/sha256:" + "0" * 64 + "/g'",
    "no-payload": "sed 's/.*/Verification for the image --/'",
}


@pytest.mark.parametrize(
    ("prints", "says"),
    [
        pytest.param("another-digest", f"name ['sha256:{'0' * 64}'], not ", id="another-digest"),
        pytest.param("no-payload", "printed no signature payload; check the cosign version", id="no-payload"),
    ],
)
def test_pin_refuses_when_cosign_accepts_but_names_no_such_signature(
    prints: str, says: str, pinning: Pinning, tmp_path: Path
) -> None:
    bindir = tmp_path / "cosign-prints"
    bindir.mkdir()
    wrapper = bindir / "cosign"
    real = TOOLS_BIN / "cosign"
    wrapper.write_text(f'#!/bin/sh\nset -e\nout=$("{real}" "$@")\nprintf "%s\\n" "$out" | {COSIGN_PRINTS[prints]}\n')
    wrapper.chmod(0o755)
    image = pinning.image("a1")
    refs = pinning.remote.refs()

    done = steps(*pinning.args("dev", image), home=pinning.home, path_first=bindir)

    assert_refused(done, 1, says)
    assert pinning.remote.refs() == refs


def test_pin_of_the_digest_already_pinned_commits_nothing(pinning: Pinning) -> None:
    image = pinning.image("a1")
    first = pinning.pin("dev", image)
    assert first.returncode == 0, first.stderr
    refs = pinning.remote.refs()

    again = pinning.pin("dev", image)

    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == first.stdout.strip() == pinning.remote.head()
    assert f"dev already pins {image.split('@')[1]} on main; nothing to commit" in again.stderr
    assert pinning.remote.refs() == refs


def test_pin_refuses_an_environment_the_branch_does_not_have(pinning: Pinning) -> None:
    refs = pinning.remote.refs()
    done = pinning.pin("qa", pinning.image("a1"))
    assert_refused(done, 2, "argument --env: environments/qa/image.yaml is not on main; add the environment first")
    assert pinning.remote.refs() == refs


@pytest.mark.parametrize(
    ("envs", "after_rejection"),
    [
        pytest.param(("dev", "dev"), "rebase onto origin/main conflicted; reset to it", id="same-env"),
        pytest.param(("dev", "staging"), "rebased onto origin/main at ", id="different-envs"),
    ],
)
def test_two_pins_at_once_both_land_in_order(envs: tuple[str, str], after_rejection: str, pinning: Pinning) -> None:
    remote = pinning.remote
    images = [pinning.image(tag) for tag in ("one", "two")]

    results = race(
        [pinning.args(env, image) for env, image in zip(envs, images, strict=True)], pinning.home, pinning.scratch
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
    assert remote.first_parents() == [pushed[loser], pushed[winner], remote.seed]
    for index in (winner, loser):
        digest = images[index].split("@")[1]
        assert remote.subject(pushed[index]) == f"pin {envs[index]} to {digest}"
        assert remote.changed_files(pushed[index]) == [f"environments/{envs[index]}/image.yaml"]
        assert remote.pin(envs[index], pushed[index])["digest"] == digest
    final = {env: remote.pin(env)["digest"] for env in set(envs)}
    if envs[0] == envs[1]:
        assert final == {envs[0]: images[loser].split("@")[1]}
    else:
        assert final == {env: image.split("@")[1] for env, image in zip(envs, images, strict=True)}


def test_two_pins_at_once_with_one_attempt_one_fails_and_nothing_is_half_pushed(pinning: Pinning) -> None:
    images = [pinning.image(tag) for tag in ("one", "two")]

    results = race(
        [pinning.args(env, image, "--attempts", "1") for env, image in zip(("dev", "staging"), images, strict=True)],
        pinning.home,
        pinning.scratch,
    )

    assert sorted(code for code, _, _ in results) == [0, 1], results
    winner = next(index for index, (code, _, _) in enumerate(results) if code == 0)
    loser_err = results[1 - winner][2]
    assert loser_err.splitlines()[-1] == (
        "pipeline error: git push to main still rejected after 1 attempts; run the step again or raise --attempts"
    )
    assert pinning.remote.first_parents() == [results[winner][1].strip(), pinning.remote.seed]
