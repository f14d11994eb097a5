"""`pin`: verify the image's signature, then commit its digest into environments/<env>/image.yaml
on the git remote. Nothing is committed when the signature does not verify; pinning the digest
already pinned commits nothing either. Prints the commit the remote has."""

from __future__ import annotations

import argparse

from pipeline import arguments, pinfile, signatures
from pipeline.errors import UsageError
from pipeline.gitremote import Checkout, checkout, say


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pin", help="verify an image, then commit its digest for an environment", description=__doc__
    )
    arguments.add_remote(parser, pushes=True)
    parser.add_argument("--env", required=True, type=arguments.environment, help="the environment to pin")
    parser.add_argument("--image", required=True, type=arguments.image, help="REPOSITORY@sha256:<hex>")
    parser.add_argument("--tag", required=True, type=arguments.tag, help="the tag for humans (not used to pull)")
    parser.add_argument(
        "--source-commit", required=True, type=arguments.commit, help="the commit the image was built from"
    )
    parser.add_argument("--public-key", required=True, type=arguments.existing_file, help="cosign public key file")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    repository, digest = args.image
    pin = pinfile.Pin(repository, digest, args.tag, args.source_commit)
    with checkout(args.remote, args.branch) as repo:
        if not (repo.dir / pinfile.path(args.env)).is_file():
            raise UsageError(
                f"argument --env: {pinfile.path(args.env)} is not on {args.branch}; add the environment first"
            )
        # Before anything is written: an image that does not verify never reaches a commit.
        signatures.verify(pin.reference, digest, args.public_key)
        if not apply(repo, args.env, pin):
            print(repo.head())
            return 0

        def reapply() -> bool:
            say(f"re-applying the pin of {args.env} on top")
            return apply(repo, args.env, pin)

        print(repo.push(args.attempts, reapply))
    return 0


def apply(repo: Checkout, env: str, pin: pinfile.Pin) -> bool:
    """Write and commit the pin; False (and nothing committed) when the branch already pins this digest."""
    current = pinfile.read(repo.dir, env)
    if (current.repository, current.digest) == (pin.repository, pin.digest):
        say(f"{env} already pins {pin.digest} on {repo.branch}; nothing to commit")
        return False
    pinfile.write(repo.dir, env, pin)
    repo.commit(f"pin {env} to {pin.digest}\n\ntag {pin.tag}, source {pin.source_commit}", pinfile.path(env))
    return True
