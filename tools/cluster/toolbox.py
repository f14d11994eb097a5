"""Where the repo's pinned tools and state live, which versions tools/ pins, how the harness runs
one, and a free loopback port."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools"
TOOLS_BIN = TOOLS_DIR / "bin"
CONTROL_PLANE_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
)


def tool(name: str) -> Path:
    """Path of a tool that `make tools` installs; never one from PATH, so versions are the pinned ones."""
    return TOOLS_BIN / name


def missing(names: tuple[str, ...] | list[str]) -> list[str]:
    return [name for name in names if not os.access(tool(name), os.X_OK)]


def go() -> str:
    found = shutil.which("go")
    if found is None:
        raise RuntimeError("go not found on PATH: the CRD source modules come from the Go module cache")
    return found


def run(args: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, and raise with that output on failure."""
    kwargs.setdefault("check", True)
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    try:
        return subprocess.run([str(arg) for arg in args], **kwargs)
    except subprocess.CalledProcessError as error:
        raise RuntimeError(
            f"{' '.join(map(str, args))} exited {error.returncode}:\n{error.stdout}\n{error.stderr}"
        ) from error


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port on `address` that nothing listens on right now (the kernel picks it)."""
    return free_ports(["port"], address)["port"]


def connects(address: str, port: int, timeout: float = 1) -> bool:
    """Whether a TCP connection to `address:port` is accepted now (a server up, a route written)."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def free_ports(names: Iterable[str], address: str = "127.0.0.1") -> dict[str, int]:
    """A distinct free port per name: every socket stays bound until all are picked, or the kernel
    may hand the same port out twice (two components then fight over it: "address already in use")."""
    with contextlib.ExitStack() as held:
        ports = {}
        for name in names:
            sock = held.enter_context(socket.socket())
            sock.bind((address, 0))
            ports[name] = int(sock.getsockname()[1])
        return ports


def pinned_version(module_dir: str, module: str) -> str:
    """The version tools/<module_dir>/go.mod pins for `module` (replace target if replaced)."""
    edit = subprocess.run(
        ["go", "mod", "edit", "-json"],  # noqa: S607 - the Go toolchain on PATH, as make tools uses it
        cwd=REPO_ROOT / "tools" / module_dir,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GOTOOLCHAIN": "local"},
    )
    data = json.loads(edit.stdout)
    for replace in data.get("Replace") or []:
        if replace["Old"]["Path"] == module and replace["New"].get("Version"):
            return replace["New"]["Version"]
    return next(r["Version"] for r in data["Require"] if r["Path"] == module)
