"""Which images the registry keeps: a pure decision over tags, digests, build times and the digests
the environments reference, so cleanup's rule reads in one place.

Kept: every digest an environment references (on the branch or on an open promotion branch); the
digests of the N newest semver tags; the digests of short-SHA tags younger than D days (or whose age
cannot be read: never delete what cannot be judged). Everything else tagged goes, with its cosign
signature, attestation and SBOM tags (`sha256-<hex>.sig|.att|.sbom`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
SHORT_SHA = re.compile(r"[0-9a-f]{7,40}")
COSIGN = re.compile(r"sha256-(?P<hex>[0-9a-f]{64})\.(sig|att|sbom)")


@dataclass
class Decision:
    digest: str
    tags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why it is kept; empty: it goes

    @property
    def keep(self) -> bool:
        return bool(self.reasons)


def subject(tag: str) -> str | None:
    """The digest a cosign tag belongs to, or None for an ordinary tag."""
    match = COSIGN.fullmatch(tag)
    return f"sha256:{match['hex']}" if match else None


def decide(
    tags: dict[str, str],
    referenced: dict[str, list[str]],
    created: dict[str, datetime | None],
    *,
    keep_semver: int,
    keep_days: float,
    now: datetime,
) -> list[Decision]:
    """`tags`: ordinary tag → digest (no cosign tags); `referenced`: digest → where it is pinned;
    `created`: digest → build time, for the digests that carry a short-SHA tag."""
    decisions: dict[str, Decision] = {}
    for tag, digest in sorted(tags.items()):
        decisions.setdefault(digest, Decision(digest)).tags.append(tag)
    for digest, places in referenced.items():
        decisions.setdefault(digest, Decision(digest)).reasons.append(f"referenced by {', '.join(places)}")

    versions = sorted((tag for tag in tags if SEMVER.fullmatch(tag)), key=version_key, reverse=True)
    for tag in versions[:keep_semver]:
        decisions[tags[tag]].reasons.append(f"semver {tag} is among the {keep_semver} newest")

    young = timedelta(days=keep_days)
    for tag, digest in tags.items():
        if SEMVER.fullmatch(tag) or not SHORT_SHA.fullmatch(tag):
            continue
        built = created.get(digest)
        if built is None:
            decisions[digest].reasons.append(f"SHA tag {tag} has no readable build time")
        elif now - built < young:
            age = (now - built).total_seconds() / 86400
            decisions[digest].reasons.append(f"SHA tag {tag} is {age:.1f} days old, younger than {keep_days:g}")
    return sorted(decisions.values(), key=lambda decision: (not decision.keep, decision.digest))


def version_key(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in tag.split("."))
