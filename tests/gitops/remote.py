"""The git side of the loop: a bare repository served as file:// (cloned from this repo, its
checked-out commit as `main`) and a work clone where a test plays the operator: commits, merges
(the pipeline's commands clone the remote themselves)."""

from __future__ import annotations

import functools
import subprocess
from itertools import takewhile
from pathlib import Path

import yaml

from tools.cluster.processes import ProcessGroup, alive
from tools.cluster.toolbox import REPO_ROOT, connects, free_port

BRANCH = "main"


def git(*args: str | Path, cwd: Path) -> str:
    """git as the tests' person runs it: no system or user config, a fixed identity."""
    done = subprocess.run(
        ["git", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(cwd),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "catalog tests",
            "GIT_AUTHOR_EMAIL": "tests@catalog-platform.invalid",
            "GIT_COMMITTER_NAME": "catalog tests",
            "GIT_COMMITTER_EMAIL": "tests@catalog-platform.invalid",
        },
    )
    assert done.returncode == 0, f"git {' '.join(map(str, args))}: {done.stderr}"
    return done.stdout.strip()


class BareRemote:
    """`bare` is the remote, served as file:// (`url`); `work` a clone where the test plays a
    person: commits, merges. Subclasses seed both."""

    def __init__(self, bare: Path, work: Path) -> None:
        self.bare = bare
        self.work = work

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def git(self, *args: str) -> str:
        return git(*args, cwd=self.work)

    def bare_git(self, *args: str) -> str:
        return git(*args, cwd=self.bare)

    def head(self, branch: str = BRANCH) -> str:
        return self.bare_git("rev-parse", f"refs/heads/{branch}")

    def merge(self, branch: str) -> str:
        """`git merge --no-ff` of the remote's `branch` into the main branch, pushed: the merge commit's SHA."""
        self.git("checkout", "--quiet", BRANCH)
        self.git("pull", "--quiet", "--ff-only", "origin", BRANCH)
        self.git("fetch", "--quiet", "origin", branch)
        self.git("merge", "--quiet", "--no-ff", "-m", f"Merge branch '{branch}'", "FETCH_HEAD")
        self.git("push", "--quiet", "origin", f"HEAD:{BRANCH}")
        return self.head()


class GitDaemon:
    """`git daemon` serving every bare repository under `base` as git://<address>:<free port>/,
    pushes allowed (receive-pack): the remote as a real node's pods reach it, on the node's bridge
    address (a file:// URL is the host's alone). A child of a ProcessGroup whose state is `base`:
    it dies with the harness, and `stop()` ends it."""

    def __init__(self, base: Path, address: str, env: dict[str, str] | None = None) -> None:
        self.base = base
        self.address = address
        self.env = env  # the daemon's, and so its hooks' (None: the harness's own)
        self.port = free_port(address)
        self._processes = ProcessGroup(base, detached=False)

    def start(self, timeout: float = 20) -> GitDaemon:
        # git-daemon itself, not `git daemon`: the wrapper would be the one the harness's death kills.
        exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
        args = [
            f"{exec_path}/git-daemon",
            "--export-all",
            "--enable=receive-pack",
            "--informative-errors",
            f"--base-path={self.base}",
            f"--listen={self.address}",
            f"--port={self.port}",
        ]
        self._processes.start("git-daemon", args, self.env)
        answers = functools.partial(connects, self.address, self.port)
        self._processes.wait("git daemon", answers, timeout, owner=f"git daemon on {self.address}")
        return self

    def url(self, remote: BareRemote) -> str:
        return f"git://{self.address}:{self.port}/{remote.bare.relative_to(self.base)}"

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._processes.children]

    def stop(self) -> None:
        self._processes.stop()

    def __enter__(self) -> GitDaemon:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        pids = self.pids
        self.stop()
        assert not [pid for pid in pids if alive(pid)], "git daemon outlived its fixture"


class Remote(BareRemote):
    """The bare remote is a clone of this repository with its checked-out commit as `main` (what
    Argo CD reads)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory / "remote.git", directory / "work")
        git("clone", "--bare", "--quiet", "--no-tags", REPO_ROOT, self.bare, cwd=directory)
        head = self.bare_git("rev-parse", "HEAD")
        for ref in self.bare_git("for-each-ref", "--format=%(refname)", "refs/heads").splitlines():
            self.bare_git("update-ref", "-d", ref)
        self.bare_git("update-ref", f"refs/heads/{BRANCH}", head)
        self.bare_git("symbolic-ref", "HEAD", f"refs/heads/{BRANCH}")
        git("clone", "--quiet", self.bare, self.work, cwd=directory)

    def read(self, path: str) -> str:
        return (self.work / path).read_text()

    def commit(self, message: str, files: dict[str, str]) -> str:
        """Write `files` (path -> text), commit them and push to the main branch; the pushed SHA."""
        for path, text in files.items():
            (self.work / path).write_text(text)
        self.git("add", *files)
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", "origin", f"HEAD:{BRANCH}")
        return self.git("rev-parse", "HEAD")


def with_header(text: str, data: dict) -> str:
    """`data` as YAML under the leading comment lines of `text` (the file's header is kept)."""
    header = takewhile(lambda line: line.startswith("#"), text.splitlines())
    return "".join(f"{line}\n" for line in header) + yaml.safe_dump(data, sort_keys=False)
