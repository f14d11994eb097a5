"""The servers of a bench run: each in a session of its own with its output in a log file, ready
when its probe answers and every worker is up, and always stopped (SIGTERM, then SIGKILL to the
whole process group) whatever happened. Start and stop are the tests' (tests.support.server)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.support.server import answers, kill_group, wait_ready

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            # Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                    inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


class Server:
    """One multi-worker Sanic server (`catalog serve` or bench.baseline) on 127.0.0.1:port."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path, port: int, workers: int):
        self.name, self.argv, self.env = name, argv, dict(env)
        self.log_path, self.port, self.workers = log_path, port, workers
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The main process (Sanic's manager); its children are the workers."""
        if self._process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, probe: str = "/livez", timeout: float = START_TIMEOUT_SECONDS) -> Server:
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603  # argv from bench.run, never user input
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() reaches every worker
            )

        def ready() -> bool:
            return len(self.worker_pids()) >= self.workers and answers(self.url + probe)

        wait_ready(self._process, ready, timeout, self.name, self.log_tail)
        return self

    def worker_pids(self) -> list[int]:
        """Sanic's workers: the main process's children that hold the listening socket (its other
        children are multiprocessing's resource tracker and Sanic's state manager)."""
        if self._process is None:
            return []
        listening = _listening_inodes(self.port)
        return sorted(pid for pid in _children(self._process.pid) if listening & _socket_inodes(pid))

    def worker_cpu_seconds(self) -> float:
        """User + system CPU time the workers have used so far."""
        total = 0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)
        return total / os.sysconf("SC_CLK_TCK")

    def worker_rss_mib(self) -> list[float]:
        return [rss for pid in self.worker_pids() if (rss := _rss_mib(pid)) is not None]

    def log_tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """SIGTERM to the main process (a graceful stop), then SIGKILL to whatever is left of the group."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        kill_group(self._process)
        self._process = None
