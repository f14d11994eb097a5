"""`tags`: the tags an image built from a source checkout gets, one per line. The 12-character short
SHA always; X.Y.Z when HEAD is exactly at a vX.Y.Z tag; `latest` only for dev, so no other
environment can ever follow a moving tag."""

from __future__ import annotations

import argparse

from pipeline import arguments
from pipeline.gitremote import git_env
from pipeline.proc import run
from pipeline.retention import SEMVER, version_key


def register(subparsers) -> None:
    parser = subparsers.add_parser("tags", help="print the image tags for a source checkout", description=__doc__)
    parser.add_argument("--source-dir", required=True, type=arguments.git_work_tree, help="the checked-out source")
    parser.add_argument("--env", required=True, type=arguments.environment, help="the environment the build is for")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    env = git_env()
    # A step's checkout is often owned by another user than the step's (a shared workspace volume);
    # git refuses such a repository ("dubious ownership") unless it is named safe.
    git = ["git", "-c", f"safe.directory={args.source_dir.resolve()}"]
    head = run([*git, "rev-parse", "--verify", "HEAD^{commit}"], cwd=args.source_dir, env=env).stdout.strip()
    at_head = run([*git, "tag", "--points-at", "HEAD", "--list", "v*"], cwd=args.source_dir, env=env).stdout.split()
    versions = sorted(
        (tag[1:] for tag in at_head if SEMVER.fullmatch(tag[1:])),
        key=version_key,
        reverse=True,
    )
    for tag in [head[:12], *versions, *(["latest"] if args.env == "dev" else [])]:
        print(tag)
    return 0
