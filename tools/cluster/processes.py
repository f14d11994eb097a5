"""Child processes that cannot outlive the harness: own process groups, a pid file, parent-death
signals, and a sweep of pid files left by harnesses that died."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PIDFILE = "pids.json"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGKILL when the harness dies,
    # even by SIGKILL, so nothing survives a crashed or killed test session.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie still answers kill(0); it is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Child:
    name: str
    pid: int
    executable: str


class ProcessGroup:
    """The processes of one control plane, recorded in `state_dir/pids.json` as they start."""

    def __init__(self, state_dir: Path, *, detached: bool) -> None:
        self.state_dir = state_dir
        self.detached = detached
        self.children: list[Child] = []
        self._popen: list[subprocess.Popen] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.state_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed by the child's exit
        process = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if self.detached else _die_with_parent,
        )
        log.close()
        self._popen.append(process)
        self.children.append(Child(name, process.pid, args[0]))
        self._save()
        return process

    def _save(self) -> None:
        record = {
            "owner": os.getpid(),
            "detached": self.detached,
            "children": [child.__dict__ for child in self.children],
        }
        tmp = self.state_dir / (PIDFILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(self.state_dir / PIDFILE)

    def failed(self) -> list[tuple[str, int]]:
        return [
            (child.name, process.returncode)
            for child, process in zip(self.children, self._popen, strict=True)
            if process.poll() is not None
        ]

    def wait(self, what: str, check, timeout: float, *, owner: str, interval: float = 0.2) -> None:
        """Poll `check` until it is true; fail at once, with its log, when one of the group's
        processes has exited, or after `timeout` seconds (the message names `owner`)."""
        deadline = time.monotonic() + timeout
        while not check():
            failed = self.failed()
            if failed:
                name, code = failed[0]
                log = (self.state_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {code} while waiting for {what}:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{owner}: {what} not ready after {timeout:.0f}s")
            time.sleep(interval)

    def close(self) -> list[int]:
        """Stop every child and remove the state directory; the pids still alive (none, or a bug)."""
        pids = [child.pid for child in self.children]
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        return [pid for pid in pids if alive(pid)]

    def stop_one(self, name: str, timeout: float = 5.0) -> None:
        """Stop the child started as `name` and forget it (the others keep running)."""
        for index, child in enumerate(self.children):
            if child.name == name:
                stop_children([child], timeout)
                self._popen.pop(index).wait(timeout=1)
                del self.children[index]
                self._save()
                return

    def stop(self, timeout: float = 5.0) -> None:
        stop_children(self.children, timeout)
        for process in self._popen:
            if process.poll() is None:
                process.wait(timeout=1)
        self.children.clear()
        self._popen.clear()
        (self.state_dir / PIDFILE).unlink(missing_ok=True)


@contextlib.contextmanager
def stopped_on_failure(stop: Callable[[], object]) -> Iterator[None]:
    """Run the block; if it fails (Ctrl-C included), call `stop` before the error goes on."""
    try:
        yield
    except BaseException:
        stop()
        raise


def stop_children(children: list[Child], timeout: float = 5.0) -> None:
    """Stop each child's process group in reverse start order (the apiserver before etcd, or it
    stalls on its storage): SIGTERM, then SIGKILL after `timeout`. A pid is only signalled while
    its command line still names the recorded executable, so a reused pid is never hit."""
    for child in reversed(children):
        if not (alive(child.pid) and child.executable in _cmdline(child.pid)):
            continue
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while alive(child.pid) and time.monotonic() < deadline:
                _reap(child.pid)
                time.sleep(0.05)
            if not alive(child.pid):
                break
        _reap(child.pid)


def _reap(pid: int) -> None:
    """Collect `pid` if it is our exited child (else it stays a zombie and looks alive to kill(0))."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def read_pidfile(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / PIDFILE).read_text())
    except (OSError, ValueError):
        return None


def sweep_stale(parent: Path, prefix: str) -> list[Path]:
    """Stop the processes of control planes whose owning harness is gone (pid files under
    `parent/prefix*`), and remove their state. Detached planes (make cluster-up) are left alone."""
    swept = []
    for state_dir in sorted(parent.glob(prefix + "*")):
        record = read_pidfile(state_dir)
        if record is None or record.get("detached") or alive(record["owner"]):
            continue
        stop_children([Child(**child) for child in record["children"]])
        shutil.rmtree(state_dir, ignore_errors=True)
        swept.append(state_dir)
    return swept
