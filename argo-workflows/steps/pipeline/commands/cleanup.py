"""`cleanup`: apply the retention rule (pipeline.retention) to one repository of the registry. The
referenced digests are read from environments/*/image.yaml on the branch and on every promote/*
branch of the git remote. Prints one line per digest with what happened and why; --dry-run deletes
nothing."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pipeline import arguments, pinfile, retention
from pipeline.gitremote import Checkout, checkout
from pipeline.registry import Registry


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cleanup", help="delete images no environment needs, with their signatures", description=__doc__
    )
    parser.add_argument("--registry", required=True, type=arguments.registry, help="HOST[:PORT]")
    parser.add_argument(
        "--plain-http",
        action="store_true",
        help="the registry answers plain HTTP under a name that is not loopback (also skips certificate checks)",
    )
    parser.add_argument("--repository", required=True, type=arguments.repository, help="e.g. catalog")
    arguments.add_remote(parser)
    parser.add_argument("--keep-semver", required=True, type=arguments.count, help="how many newest X.Y.Z tags to keep")
    parser.add_argument("--keep-days", required=True, type=arguments.days, help="keep SHA tags younger than this")
    parser.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    parser.set_defaults(run=main)


def referenced_digests(repo: Checkout) -> dict[str, list[str]]:
    """digest → where it is pinned ("environments/dev/image.yaml on main"), over the branch and
    every promote/* branch as the remote has them now. A pin file that does not parse stops cleanup."""
    branches = [repo.branch, *repo.remote_branches("promote/*")]
    refs = [f"origin/{branch}" for branch in branches]
    repo.git("fetch", "--quiet", "origin", *(f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches))
    found: dict[str, list[str]] = {}
    for branch, ref in zip(branches, refs, strict=True):
        names = repo.git("ls-tree", "-r", "--name-only", ref, "--", "environments").stdout.split()
        for name in names:
            parts = name.split("/")
            if len(parts) != 3 or parts[2] != "image.yaml":
                continue
            pin = pinfile.parse(repo.git("show", f"{ref}:{name}").stdout, f"{name} on {branch}")
            found.setdefault(pin.digest, []).append(f"{name} on {branch}")
    return found


def main(args: argparse.Namespace) -> int:
    registry = Registry(args.registry, args.repository, plain_http=args.plain_http)
    with checkout(args.remote, args.branch) as repo:
        referenced = referenced_digests(repo)
    tags: dict[str, str] = {}
    signature_tags: dict[str, str] = {}
    for tag in registry.tags():
        (signature_tags if retention.subject(tag) else tags)[tag] = registry.digest(tag)
    short_sha = {digest for tag, digest in tags.items() if retention.SHORT_SHA.fullmatch(tag)}
    created = {digest: registry.created(digest) for digest in short_sha}
    decisions = retention.decide(
        tags, referenced, created, keep_semver=args.keep_semver, keep_days=args.keep_days, now=datetime.now(UTC)
    )
    kept = {decision.digest for decision in decisions if decision.keep}
    verb = "would delete" if args.dry_run else "delete"
    for decision in decisions:
        labels = f" [{', '.join(decision.tags)}]" if decision.tags else ""
        if decision.keep:
            print(f"keep {decision.digest}{labels}: {'; '.join(decision.reasons)}")
            continue
        # Signatures first: a run cut short leaves an unsigned image the next run deletes, never a
        # signature whose image is gone.
        for tag in sorted(tag for tag in signature_tags if retention.subject(tag) == decision.digest):
            if signature_tags[tag] in kept:
                continue
            print(f"{verb} {signature_tags[tag]} [{tag}]: cosign tag of {decision.digest}, which goes")
            if not args.dry_run:
                registry.delete(signature_tags[tag])
        print(f"{verb} {decision.digest}{labels}: not referenced, not among the newest semver, no young SHA tag")
        if not args.dry_run:
            registry.delete(decision.digest)
    return 0
