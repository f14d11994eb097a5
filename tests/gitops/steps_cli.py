"""Driving the pipeline's steps as the workflow pods do: `python3 -m pipeline` in a subprocess with
PYTHONPATH at argo-workflows/steps, Debian's python3 with python3-yaml (what the step image
carries), the pinned git/cosign/crane/kubectl on PATH. And the git remote they talk to: a bare
repository served as file://, seeded from a copy of this repo's environments/ folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.gitops.remote import BareRemote, git, with_header
from tools.cluster.toolbox import REPO_ROOT, TOOLS_BIN

STEPS = REPO_ROOT / "argo-workflows" / "steps"
# Debian's interpreter, not the virtualenv's: the step image has python3 and python3-yaml, nothing else.
PYTHON = "/usr/bin/python3"


def python_ready() -> str | None:
    """Why the steps cannot run here, or None."""
    if not Path(PYTHON).exists():
        return f"{PYTHON} is missing (apt-get install python3 python3-yaml)"
    if subprocess.run([PYTHON, "-c", "import yaml"], capture_output=True, check=False).returncode:
        return "Debian's python3 lacks PyYAML (apt-get install python3-yaml)"
    if shutil.which("git") is None:
        return "git is missing (apt-get install git)"
    return None


def steps_env(home: Path, path_first: Path | None = None, kubeconfig: Path | None = None) -> dict[str, str]:
    """The pod's environment, nearly: HOME of its own (no git or cosign config of this machine), the
    pinned tools on PATH (`path_first` before them), `kubeconfig` or else the one the tests point at."""
    path = [str(TOOLS_BIN), "/usr/bin", "/bin"]
    if path_first is not None:
        path.insert(0, str(path_first))
    env = {"PATH": os.pathsep.join(path), "HOME": str(home), "PYTHONPATH": str(STEPS), "GIT_CONFIG_NOSYSTEM": "1"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    elif "KUBECONFIG" in os.environ:
        env["KUBECONFIG"] = os.environ["KUBECONFIG"]
    return env


def steps(
    *args: str, home: Path, path_first: Path | None = None, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python3 -m pipeline ARGS` to completion; the caller asserts on its exit code and output."""
    return subprocess.run(
        [PYTHON, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        check=False,
        env=steps_env(home, path_first, kubeconfig),
        timeout=300,
    )


def assert_refused(done: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    """A refusal as the steps promise it: the exit code, nothing on stdout, one line on stderr
    that says `says`, no traceback."""
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("pipeline usage error: " if code == 2 else "pipeline error: "), done.stderr
    assert says in done.stderr, done.stderr


def start_steps(*args: str, home: Path, path_first: Path | None = None) -> subprocess.Popen[str]:
    """The same, started and not waited for (pins that race)."""
    return subprocess.Popen(
        [PYTHON, "-m", "pipeline", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=steps_env(home, path_first),
    )


def random_digest() -> str:
    """A digest no image has: for pins whose image is never pulled (promote, rollback)."""
    return f"sha256:{hashlib.sha256(os.urandom(16)).hexdigest()}"


def barrier_git(directory: Path) -> Path:
    """A `git` for PATH that holds each process's first push until two processes reached theirs, then
    runs the real git: both steps cloned the same main, so one push must lose the race."""
    bindir, waiting = directory / "bin", directory / "barrier"
    bindir.mkdir()
    waiting.mkdir()
    script = bindir / "git"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = push ]; then\n'
        f'  touch "{waiting}/$PPID"; i=0\n'
        f'  while [ "$(ls "{waiting}" | wc -l)" -lt 2 ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done\n'
        "fi\n"
        f'exec {shutil.which("git")} "$@"\n'
    )
    script.chmod(0o755)
    return bindir


def crane_resolving(directory: Path, name: str) -> Path:
    """A `crane` for PATH that runs the real one where `name` resolves to 127.0.0.1: in a mount
    namespace of its own, over a copy of /etc/hosts with that line added (root only; the mount
    goes with the process). A registry on loopback is then reached by a name crane does not treat
    as loopback, as the platform's registry is (host.docker.internal)."""
    bindir = directory / "resolving"
    bindir.mkdir()
    hosts = directory / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text() + f"127.0.0.1 {name}\n")
    script = bindir / "crane"
    script.write_text(
        "#!/bin/sh\n"
        "exec unshare --mount --propagation private "
        f"""sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "{hosts}" "{TOOLS_BIN / "crane"}" "$@"\n"""
    )
    script.chmod(0o755)
    return bindir


def race(commands: list[list[str]], home: Path, scratch: Path) -> list[tuple[int, str, str]]:
    """Two steps started at once, their pushes held until both are ready; (exit code, stdout,
    stderr) of each."""
    bindir = barrier_git(scratch)
    processes = [start_steps(*command, home=home, path_first=bindir) for command in commands]
    try:
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        for process in processes:  # a test that failed on the way leaves no step running
            if process.poll() is None:
                process.kill()
                process.wait()
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs, strict=True)]


class SeededRemote(BareRemote):
    """The remote seeded with a copy of this repository's environments/ folder, in one commit (`seed`)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory / "platform.git", directory / "work")
        git("init", "--quiet", "--bare", "--initial-branch=main", self.bare, cwd=directory)
        git("init", "--quiet", "--initial-branch=main", self.work, cwd=directory)
        shutil.copytree(REPO_ROOT / "environments", self.work / "environments")
        self.git("add", "environments")
        self.git("commit", "--quiet", "-m", "environments as the repository has them")
        self.git("remote", "add", "origin", self.url)
        self.git("push", "--quiet", "origin", "main")
        self.seed = self.head()

    def refs(self) -> str:
        """Every ref of the remote with its commit: equal before and after means nothing was pushed."""
        return self.bare_git("for-each-ref", "--format=%(refname) %(objectname)")

    def show(self, path: str, ref: str = "main") -> str:
        return self.bare_git("show", f"{ref}:{path}")

    def pin(self, env: str, ref: str = "main") -> dict[str, str]:
        return yaml.safe_load(self.show(f"environments/{env}/image.yaml", ref))["image"]

    def first_parents(self, ref: str = "main") -> list[str]:
        return self.bare_git("rev-list", "--first-parent", ref).split()

    def subject(self, commit: str) -> str:
        return self.bare_git("log", "-1", "--format=%s", commit)

    def changed_files(self, commit: str, parent: str | None = None) -> list[str]:
        return self.bare_git("diff", "--name-only", parent or f"{commit}^1", commit).split()

    def commit_pin(
        self, env: str, digest: str, *, tag: str = "0.0.1", repository: str = "", branch: str = "main"
    ) -> str:
        """A pin committed on the checked-out branch and pushed to `branch` the way a person would,
        without the pipeline (setup for promote, rollback and cleanup cases). Returns the commit."""
        if branch == "main":
            self.git("pull", "--quiet", "--ff-only", "origin", "main")
        path = self.work / "environments" / env / "image.yaml"
        text = path.read_text()
        data = yaml.safe_load(text)
        data["image"].update(digest=digest, tag=tag, **({"repository": repository} if repository else {}))
        path.write_text(with_header(text, data))
        self.git("commit", "--quiet", "-am", f"pin {env} to {digest}")
        self.git("push", "--quiet", "origin", f"HEAD:{branch}")
        return self.head(branch)
