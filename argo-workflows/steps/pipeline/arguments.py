"""What each argument may be. Each check is an argparse `type`: a value it refuses becomes
`argument --X: <why>; <fix>` and exit 2 (pipeline.cli)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

# Environments promote in this order; a name is a DNS label because it is part of a namespace name.
PROMOTION_ORDER = ("dev", "staging", "prod")
# The distribution spec's grammar, narrowed to what a pin needs: its pieces, then the wholes.
_PORT = r"(:[0-9]{1,5})?"
_HOST = r"[a-zA-Z0-9.-]+" + _PORT
_PATH = r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_REPOSITORY = re.compile(f"(?P<host>{_HOST})/(?P<name>{_PATH})")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _refuse(why: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(why)


def _matching(pattern: str, refusal: str) -> Callable[[str], str]:
    """A check that takes a value matching `pattern` whole, else refuses with `refusal` (its {value!r})."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _refuse(refusal.format(value=value))
        return value

    return check


environment = _matching(
    r"[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?",
    "{value!r} is not an environment name; give a folder of environments/, e.g. dev",
)
tag = _matching(
    _TAG,
    "{value!r} is not an image tag; give the tag `pipeline tags` printed (e.g. 1.4.0)",
)
commit = _matching(
    r"[0-9a-f]{40}|[0-9a-f]{64}", "{value!r} is not a full commit SHA; give all 40 hex digits (git rev-parse HEAD)"
)
# No "..", no leading "-" or "/", no trailing "/": what git refuses in a branch name, or mistakes for an option.
branch = _matching(r"(?!-|/)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}(?<!/)", "{value!r} is not a branch name; give e.g. main")
registry = _matching(
    r"[a-zA-Z0-9][a-zA-Z0-9.-]*" + _PORT,
    "{value!r} is not a registry; give HOST[:PORT] without a scheme, e.g. registry:5000",
)
repository = _matching(
    _PATH,
    "{value!r} is not a repository name; give the path inside the registry, e.g. catalog",
)


def image(value: str) -> tuple[str, str]:
    """REPO@sha256:HEX → (repository, digest). A tag is refused: a pin names content, never a tag."""
    name, at, digest = value.partition("@")
    if not at or not _DIGEST.fullmatch(digest):
        raise _refuse(f"{value!r} has no sha256 digest; give REPOSITORY@sha256:<64 hex>, the digest the build printed")
    if not _REPOSITORY.fullmatch(name) or ":" in name.rsplit("/", 1)[-1]:
        raise _refuse(f"{name!r} is not a repository with its registry host; give e.g. registry:5000/catalog")
    return name, digest


# A registry reference as Trivy's --db-repository takes it: HOST[:PORT]/PATH[:TAG].
oci_reference = _matching(
    _HOST + r"/[a-z0-9._/-]+" + f"(:{_TAG})?",
    "{value!r} is not an OCI repository; give HOST[:PORT]/PATH[:TAG], e.g. registry:5000/trivy-db:2",
)


def remote(value: str) -> str:
    if not value or value.startswith("-") or any(c.isspace() for c in value):
        raise _refuse(f"{value!r} is not a git remote; give a URL git can clone, e.g. file:///srv/git/platform.git")
    return value


def attempts(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 20:
        raise _refuse(f"{value!r} is not a number of attempts; give 1 to 20")
    return int(value)


def count(value: str) -> int:
    if not value.isdigit():
        raise _refuse(f"{value!r} is not a count; give a whole number, 0 or more")
    return int(value)


def days(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 36500:
        raise _refuse(f"{value!r} is not a number of days; give 0 or more, e.g. 14")
    return number


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise _refuse(f"{value!r} is not a readable file; give the path of the cosign public key (cosign.pub)")
    return path


def git_work_tree(value: str) -> Path:
    path = Path(value)
    if not (path / ".git").exists():
        raise _refuse(f"{value!r} is not a git work tree; give the checked-out source (its .git is needed)")
    return path


def add_remote(parser: argparse.ArgumentParser, *, pushes: bool = False) -> None:
    """The options of every command that reads the git remote (and pushes to it: --attempts)."""
    parser.add_argument("--remote", required=True, type=remote, help="the platform's git remote (URL)")
    parser.add_argument("--branch", default="main", type=branch, help="the branch environments live on (main)")
    if pushes:
        parser.add_argument("--attempts", default=5, type=attempts, help="push attempts on a moved branch (5)")
