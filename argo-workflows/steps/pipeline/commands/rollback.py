"""`rollback`: `git revert` the last commit on the branch's first-parent line that changed
environments/<env>/image.yaml (with `-m 1` when it is a promotion merge), and push it with the same
fetch + rebase + retry as a pin. Rolling back twice reverts the revert. Prints the revert commit."""

from __future__ import annotations

import argparse

from pipeline import arguments, pinfile
from pipeline.errors import Failed, UsageError
from pipeline.gitremote import checkout, say


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "rollback", help="revert an environment's last pin or promotion", description=__doc__
    )
    arguments.add_remote(parser, pushes=True)
    parser.add_argument("--env", required=True, type=arguments.environment, help="the environment to roll back")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    path = pinfile.path(args.env)
    with checkout(args.remote, args.branch) as repo:
        if not (repo.dir / path).is_file():
            raise UsageError(f"argument --env: {path} is not on {args.branch}; name an existing environment")
        last = repo.git("log", "--first-parent", "--format=%H %P", "-n", "1", "--", path).stdout.split()
        commit, parents = last[0], last[1:]
        if not parents:
            raise Failed(
                f"{path} has not changed since the first commit ({commit[:12]}); there is nothing to roll back"
            )
        # Reverting a commit that also changed other files would undo more than this environment's pin.
        others = [name for name in repo.git("diff", "--name-only", parents[0], commit).stdout.split() if name != path]
        if others:
            raise Failed(f"{commit[:12]} changes {', '.join(others)} besides {path}; revert it by hand")
        pinned = pinfile.read(repo.dir, args.env).digest
        repo.git("revert", "--no-edit", *(["-m", "1"] if len(parents) > 1 else []), commit)
        say(f"reverted {commit[:12]}: {args.env} goes from {pinned} back to {pinfile.read(repo.dir, args.env).digest}")

        def refuse() -> bool:
            raise Failed(
                f"{path} changed on the remote {args.branch} meanwhile; run rollback again to revert the newest"
            )

        print(repo.push(args.attempts, refuse))
    return 0
