"""The docs hold together: every relative link in a Markdown file points at a file or folder that
exists (and at a heading, for #anchors into Markdown), and README.md stays a short front door."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
README_MAX_LINES = 150
# Not the repository's own text: virtualenvs, built tools, local state, caches.
_SKIPPED_DIRS = {"var", "node_modules", "__pycache__"}

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
# [text](target "title") and ![alt](target); [label]: target reference definitions.
_INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def markdown_files() -> list[Path]:
    """Every Markdown file of the repository, skipping hidden folders and local state."""
    found = []
    for folder, dirs, files in os.walk(REPO_ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".md")]
    return found


def prose(text: str) -> str:
    """The text without code blocks and code spans, where brackets are not links."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    body = prose(text)
    return _INLINE.findall(body) + _REFERENCE.findall(body)


def anchors(markdown: Path) -> set[str]:
    """The #fragments a Markdown renderer gives the file's headings (GitHub's rule)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown.read_text())):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken(source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, does not resolve; None when it does."""
    path_part, _, fragment = target.partition("#")
    base = REPO_ROOT if path_part.startswith("/") else source.parent
    resolved = (base / unquote(path_part.lstrip("/"))).resolve() if path_part else source
    if not resolved.is_relative_to(REPO_ROOT):
        return "points outside the repository"
    shown = resolved.relative_to(REPO_ROOT).as_posix()
    if not resolved.exists():
        return f"{shown} does not exist"
    if fragment and resolved.suffix == ".md" and unquote(fragment).lower() not in anchors(resolved):
        return f"{shown} has no heading #{fragment}"
    return None


def relative_links() -> list:
    params = []
    for source in markdown_files():
        name = source.relative_to(REPO_ROOT).as_posix()
        for target in links(source.read_text()):
            if not _SCHEME.match(target):
                params.append(pytest.param(source, target, id=f"{name}->{target}"))
    return params


@pytest.mark.parametrize(("source", "target"), relative_links())
def test_relative_link_resolves(source: Path, target: str) -> None:
    assert broken(source, target) is None, f"{source.relative_to(REPO_ROOT)}: [{target}] {broken(source, target)}"


def test_readme_is_a_short_front_door() -> None:
    lines = (REPO_ROOT / "README.md").read_text().splitlines()

    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_links_every_docs_page() -> None:
    readme = REPO_ROOT / "README.md"
    linked = {(readme.parent / t.partition("#")[0]).resolve() for t in links(readme.read_text())}

    orphans = [p.name for p in sorted((REPO_ROOT / "docs").glob("*.md")) if p.resolve() not in linked]

    assert not orphans, f"docs pages README.md does not link: {orphans}"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        pytest.param("docs/api.md", None, id="file"),
        pytest.param("docs/", None, id="folder"),
        pytest.param("docs/api.md#routes", None, id="heading"),
        pytest.param("#documentation", None, id="own-heading"),
        pytest.param("docs/no-such-page.md", "docs/no-such-page.md does not exist", id="missing-file"),
        pytest.param("docs/api.md#nowhere", "docs/api.md has no heading #nowhere", id="missing-heading"),
        pytest.param("../outside", "points outside the repository", id="outside"),
    ],
)
def test_broken_tells_a_resolving_link_from_a_broken_one(target: str, reason: str | None) -> None:
    assert broken(REPO_ROOT / "README.md", target) == reason
