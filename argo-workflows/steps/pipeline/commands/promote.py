"""`promote`: push a branch `promote/<to>/<digest12>` whose one change copies the pin of the source
environment into the target's image.yaml. Merging that branch (`git merge`, or a pull request) is
the promotion. Environments go dev → staging → prod; skipping one, or promoting a digest the source
does not run healthy, is refused unless --force. Prints the branch name."""

from __future__ import annotations

import argparse

from pipeline import arguments, health, pinfile
from pipeline.arguments import PROMOTION_ORDER
from pipeline.errors import Failed, UsageError
from pipeline.gitremote import checkout, say
from pipeline.proc import last_line


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "promote", help="push a branch that promotes one environment's pin to the next", description=__doc__
    )
    arguments.add_remote(parser)
    parser.add_argument("--from", dest="source", required=True, type=arguments.environment, help="e.g. dev")
    parser.add_argument("--to", dest="target", required=True, type=arguments.environment, help="e.g. staging")
    parser.add_argument("--force", action="store_true", help="allow skipping an environment and an unhealthy source")
    parser.set_defaults(run=main)


def check_order(source: str, target: str, force: bool) -> None:
    for name, env in (("--from", source), ("--to", target)):
        if env not in PROMOTION_ORDER:
            raise UsageError(f"argument {name}: {env!r} is not one of {' → '.join(PROMOTION_ORDER)}")
    step = PROMOTION_ORDER.index(target) - PROMOTION_ORDER.index(source)
    if step < 1:
        raise UsageError(
            f"argument --to: {target} does not come after {source} in {' → '.join(PROMOTION_ORDER)}; "
            "to go back, use rollback"
        )
    if step > 1 and not force:
        skipped = ", ".join(PROMOTION_ORDER[PROMOTION_ORDER.index(source) + 1 : PROMOTION_ORDER.index(target)])
        raise UsageError(f"argument --to: {source} → {target} skips {skipped}; promote in order, or pass --force")


def main(args: argparse.Namespace) -> int:
    check_order(args.source, args.target, args.force)
    with checkout(args.remote, args.branch) as repo:
        for env in (args.source, args.target):
            if not (repo.dir / pinfile.path(env)).is_file():
                raise UsageError(f"{pinfile.path(env)} is not on {args.branch}; add the environment first")
        pin = pinfile.read(repo.dir, args.source)
        if pinfile.read(repo.dir, args.target).digest == pin.digest:
            say(f"{args.target} already pins {pin.digest} on {args.branch}; nothing to promote")
            return 0
        if args.force:
            say(f"--force: not checking that {args.source} runs {pin.reference} healthy")
        else:
            health.check_running(args.source, pin.reference)
        name = f"promote/{args.target}/{pin.digest.removeprefix('sha256:')[:12]}"
        if repo.remote_branches(name):
            say(f"{name} is already on the remote; merge it to promote")
            print(name)
            return 0
        pinfile.write(repo.dir, args.target, pin)
        repo.git("switch", "--quiet", "--create", name)
        repo.commit(f"promote {args.target} to {pin.digest}\n\nthe pin {args.source} runs", pinfile.path(args.target))
        result = repo.git("push", "--quiet", "origin", f"HEAD:refs/heads/{name}", check=False)
        if result.returncode != 0:
            raise Failed(f"git push of {name} refused: {last_line(result.stderr)}")
        print(name)
    return 0
