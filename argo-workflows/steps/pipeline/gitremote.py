"""A throwaway clone of the platform's git remote, and pushing to it under concurrency.

Every tool that commits pins meets the same failure: another pipeline pushed first and the push is
refused as non-fast-forward. `push` answers it the way a person would: fetch, rebase onto what the
remote has now, push again, with a growing pause between attempts. When the rebase conflicts (two
pins of the same environment), the caller decides: a pin re-applies itself on top, a rollback stops."""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import Failed
from pipeline.proc import last_line, run

# Who the pipeline commits as, unless the environment names someone (GIT_AUTHOR_NAME, ...).
_IDENTITY = {
    "GIT_AUTHOR_NAME": "catalog pipeline",
    "GIT_AUTHOR_EMAIL": "pipeline@catalog.invalid",
    "GIT_COMMITTER_NAME": "catalog pipeline",
    "GIT_COMMITTER_EMAIL": "pipeline@catalog.invalid",
}
# What git prints when the remote branch moved under us: the client saw it (rejected: fetch first,
# non-fast-forward) or the server lost the race for the ref lock (failed to update ref).
_MOVED = ("[rejected]", "non-fast-forward", "fetch first", "failed to update ref", "cannot lock ref")


def git_env() -> dict[str, str]:
    """The environment git runs in: this process's, and never a prompt for credentials."""
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0"}


def say(message: str) -> None:
    """Progress and reasons go to stderr; stdout carries only the command's result."""
    print(f"pipeline: {message}", file=sys.stderr, flush=True)


class Checkout:
    """A clone of one branch of the remote (`origin`) in a temporary directory."""

    def __init__(self, branch: str, directory: Path) -> None:
        self.branch = branch
        self.dir = directory
        self.env = {**_IDENTITY, **git_env()}

    def git(self, *args: str, check: bool = True):
        return run(["git", *args], cwd=self.dir, check=check, env=self.env)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def commit(self, message: str, *paths: str) -> str:
        self.git("add", "--", *paths)
        self.git("commit", "--quiet", "--message", message)
        return self.head()

    def remote_branches(self, pattern: str) -> list[str]:
        """Branch names on the remote matching `pattern` (e.g. promote/*), as the remote has them now."""
        listed = self.git("ls-remote", "--heads", "origin", pattern).stdout.splitlines()
        return [line.split("\t", 1)[1].removeprefix("refs/heads/") for line in listed if "\t" in line]

    def push(self, attempts: int, on_conflict: Callable[[], bool], *, base_delay: float = 0.25) -> str:
        """Push HEAD to the branch; when the branch moved on the remote, fetch + rebase + retry.
        `on_conflict` runs after a conflicting rebase was aborted; it returns False when, on top of
        the remote's branch, there is nothing left to push. Returns the commit the remote now has."""
        target = self.branch
        for attempt in range(1, attempts + 1):
            result = self.git("push", "--porcelain", "origin", f"HEAD:refs/heads/{target}", check=False)
            if result.returncode == 0:
                return self.head()
            output = result.stdout + result.stderr
            if not any(marker in output for marker in _MOVED):
                raise Failed(f"git push to {target} refused: {last_line(result.stderr or result.stdout)}")
            if attempt == attempts:
                break
            # Doubling pauses with jitter, so two pipelines that collided do not collide again in step.
            jitter = random.uniform(0.5, 1.5)  # noqa: S311  # nosec B311
            delay = min(base_delay * 2 ** (attempt - 1), 5.0) * jitter
            say(
                f"push rejected: {target} moved on the remote (attempt {attempt} of {attempts}); "
                f"fetch + rebase, retry in {delay:.2f} s"
            )
            time.sleep(delay)
            self.git("fetch", "--quiet", "origin", f"+refs/heads/{target}:refs/remotes/origin/{target}")
            upstream = f"origin/{target}"
            if self.git("rebase", "--quiet", upstream, check=False).returncode == 0:
                say(f"rebased onto {upstream} at {self.git('rev-parse', '--short=12', upstream).stdout.strip()}")
                continue
            self.git("rebase", "--abort", check=False)
            self.git("reset", "--quiet", "--hard", upstream)
            say(f"rebase onto {upstream} conflicted; reset to it")
            if not on_conflict():
                return self.head()
        raise Failed(
            f"git push to {target} still rejected after {attempts} attempts; run the step again or raise --attempts"
        )


@contextmanager
def checkout(remote: str, branch: str) -> Iterator[Checkout]:
    """Clone `branch` of `remote` (full history: rollback walks it), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pipeline-") as scratch:
        directory = Path(scratch) / "repo"
        result = run(
            ["git", "clone", "--quiet", "--no-tags", "--single-branch", "--branch", branch, remote, str(directory)],
            check=False,
            env=git_env(),
        )
        if result.returncode != 0:
            raise Failed(f"git clone of {remote} (branch {branch}) failed: {last_line(result.stderr)}")
        yield Checkout(branch, directory)
