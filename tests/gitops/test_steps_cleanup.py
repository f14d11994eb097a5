"""`pipeline cleanup` against the local registry (deletes enabled) with cosign signatures and
attestations, and a bare git remote whose main and promote/* branches reference digests. The tags
left afterwards are asserted as an exact set, each still naming its original digest."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.gitops.steps_cli import SeededRemote, assert_refused, crane_resolving, steps
from tests.support.registry import cosign_attest, cosign_sign, push_tiny_image
from tests.support.tiers import skip_or_fail
from tools.cluster.registry import LocalRegistry, crane

pytestmark = pytest.mark.gitops

# A registry name crane takes for neither loopback nor a private address, as host.docker.internal.
REGISTRY_NAME = "registry.platform.test"


@dataclass
class Scene:
    """What the registry holds before cleanup, and what must be left."""

    before: dict[str, str]  # every tag → digest
    kept_tags: set[str]
    kept: set[str]  # digests printed as kept (the registry's and the remote's)
    deleted: set[str]  # image digests printed as deleted (their cosign tags on lines of their own)


def sha_tag() -> str:
    return os.urandom(6).hex()


def signature_tags(digest: str, *suffixes: str) -> set[str]:
    return {f"{digest.replace(':', '-')}.{suffix}" for suffix in suffixes}


@pytest.fixture
def scene(local_registry: LocalRegistry, cosign_keys, seeded_remote: SeededRemote, tmp_path: Path) -> Scene:
    key = cosign_keys[0]
    repository = f"{local_registry.host}/catalog"
    now = datetime.now(UTC)
    old, young = now - timedelta(days=40), now - timedelta(days=1)
    predicate = tmp_path / "scan.json"
    predicate.write_text(json.dumps({"findings": []}))

    def image(tags: list[str], created: datetime, *, sign: bool = True, attest: bool = False) -> str:
        digest = push_tiny_image(f"{repository}:{tags[0]}", created, tmp_path)
        for tag in tags[1:]:
            crane("tag", f"{repository}@{digest}", tag)
        if sign:
            cosign_sign(f"{repository}@{digest}", key)
        if attest:
            cosign_attest(f"{repository}@{digest}", key, predicate)
        return digest

    on_main = image([sha_tag()], old, attest=True)
    on_branch = image([sha_tag()], old)
    semver = {version: image([version], old) for version in ("1.0.0", "1.1.0", "1.2.0")}
    # 1.10.0 is newer than 1.2.0 (numbers, not strings); it also carries an old SHA tag, kept with it.
    semver["1.10.0"] = image(["1.10.0", sha_tag()], old)
    fresh = image([sha_tag()], young)
    stale = image([sha_tag()], old, attest=True)
    latest = image(["latest"], old, sign=False)

    seeded_remote.commit_pin("dev", on_main, repository=repository)
    branch = f"promote/staging/{on_branch[7:19]}"
    seeded_remote.git("checkout", "--quiet", "-b", branch)
    seeded_remote.commit_pin("staging", on_branch, repository=repository, branch=branch)
    seeded_remote.git("checkout", "--quiet", "main")

    before = {tag: crane("digest", f"{repository}:{tag}") for tag in crane("ls", repository).split()}
    kept_images = {on_main, on_branch, semver["1.10.0"], semver["1.2.0"], fresh}
    return Scene(
        before=before,
        kept_tags={tag for tag, digest in before.items() if digest in kept_images or _signs(tag, kept_images)},
        kept=kept_images | {seeded_remote.pin(env)["digest"] for env in ("staging", "prod")},
        deleted={semver["1.0.0"], semver["1.1.0"], stale, latest},
    )


def _signs(tag: str, digests: set[str]) -> bool:
    return any(tag in signature_tags(digest, "sig", "att") for digest in digests)


def cleanup(registry: LocalRegistry | str, remote: SeededRemote, home: Path, *extra: str, path_first=None):
    return steps(
        "cleanup", "--registry", registry if isinstance(registry, str) else registry.host, "--repository", "catalog",
        "--remote", remote.url, "--keep-semver", "2", "--keep-days", "7", *extra, home=home, path_first=path_first,
    )  # fmt: skip


def printed(stdout: str, verb: str) -> set[str]:
    """The digests of the lines starting with `verb` (keep, delete, would delete)."""
    return {line[len(verb) + 1 :].split()[0].rstrip(":") for line in stdout.splitlines() if line.startswith(verb + " ")}


def registry_now(registry: LocalRegistry) -> dict[str, str]:
    repository = f"{registry.host}/catalog"
    return {tag: crane("digest", f"{repository}:{tag}") for tag in crane("ls", repository).split()}


def test_cleanup_keeps_what_is_referenced_newest_or_young_and_deletes_the_rest_with_signatures(
    scene: Scene, local_registry: LocalRegistry, seeded_remote: SeededRemote, steps_home: Path
) -> None:
    done = cleanup(local_registry, seeded_remote, steps_home)

    assert done.returncode == 0, done.stderr
    assert registry_now(local_registry) == {tag: scene.before[tag] for tag in scene.kept_tags}
    assert printed(done.stdout, "keep") == scene.kept
    signatures = {tag for tag in scene.before if _signs(tag, scene.deleted)}
    assert len(signatures) == 4  # three .sig (latest is unsigned) and the stale image's .att
    assert printed(done.stdout, "delete") == scene.deleted | {scene.before[tag] for tag in signatures}
    for tag in signatures:
        assert f"delete {scene.before[tag]} [{tag}]: cosign tag of sha256:" in done.stdout
    by_digest = {line.split()[1]: line for line in done.stdout.splitlines()}
    assert "semver 1.10.0 is among the 2 newest" in by_digest[scene.before["1.10.0"]]
    assert "referenced by environments/staging/image.yaml on promote/staging/" in done.stdout


def test_cleanup_dry_run_deletes_nothing(
    scene: Scene, local_registry: LocalRegistry, seeded_remote: SeededRemote, steps_home: Path
) -> None:
    done = cleanup(local_registry, seeded_remote, steps_home, "--dry-run")

    assert done.returncode == 0, done.stderr
    assert registry_now(local_registry) == scene.before
    assert printed(done.stdout, "keep") == scene.kept
    assert printed(done.stdout, "delete") == set()
    assert scene.deleted <= printed(done.stdout, "would delete")


@pytest.mark.parametrize(
    ("flags", "code"),
    [pytest.param([], 1, id="refused-without-plain-http"), pytest.param(["--plain-http"], 0, id="plain-http")],
)
def test_cleanup_reaches_a_plain_http_registry_by_name_with_plain_http(
    local_registry: LocalRegistry, seeded_remote: SeededRemote, steps_home: Path, tmp_path: Path, flags, code
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        skip_or_fail("naming the registry needs root and unshare (util-linux) for a mount namespace")
    digest = push_tiny_image(f"{local_registry.host}/catalog:1.0.0", datetime.now(UTC), tmp_path)
    named = f"{REGISTRY_NAME}:{local_registry.host.rsplit(':', 1)[1]}"

    done = cleanup(named, seeded_remote, steps_home, *flags, path_first=crane_resolving(tmp_path, REGISTRY_NAME))

    if code:
        assert_refused(done, 1, f"cannot list the tags of {named}/catalog: ")
        assert done.stderr.endswith("server gave HTTP response to HTTPS client; the registry answers plain HTTP: "
                                    "give --plain-http\n")  # fmt: skip
    else:
        assert done.returncode == 0, done.stderr
        assert f"keep {digest} [1.0.0]: semver 1.0.0 is among the 2 newest" in done.stdout.splitlines()
        pinned = {seeded_remote.pin(env)["digest"] for env in ("dev", "staging", "prod")}
        assert printed(done.stdout, "keep") == {digest, *pinned}
        assert printed(done.stdout, "delete") == set()
    assert registry_now(local_registry) == {"1.0.0": digest}
