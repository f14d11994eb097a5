"""`catalog serve` as a real child process: an environment scrubbed of the parent's settings, a wait
until it is ready, and its whole process group killed whatever happened. ServerProcess is the
process tier's server (stdout JSON log lines read in a thread); the bench's servers share the rest."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from tools.cluster.toolbox import free_port

# The parent's settings must not leak into a server under test.
_DROPPED_PREFIXES = ("CATALOG_", "OTEL_", "DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "SANIC_")
START_TIMEOUT_SECONDS = 45.0
# Sanic's manager polls worker acks every 0.1 s and, until it has seen all of them, a SIGTERM leaves it
# spinning for 30 s and exiting 1 (sanic/worker/manager.py wait_for_ack): give it a few polls.
ACK_SETTLE_SECONDS = 0.5


def catalog_env(**values: str) -> dict[str, str]:
    """The parent environment without any catalog/OTel/Prometheus setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


def run_catalog(*args: str, env: Mapping[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """One short `catalog <args>` command (migrate, token, a serve that must refuse to start); if it
    outlives `timeout` its whole process group is killed (a serve that wrongly started has workers)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "catalog", *args],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        kill_group(process)
        raise
    kill_group(process)  # nothing should be left; make sure
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def answers(url: str) -> bool:
    """`url` answers 200 now (a readiness probe: any error is a no)."""
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(
    process: subprocess.Popen[Any], ready: Callable[[], bool], timeout: float, name: str, tail: Callable[[], str]
) -> None:
    """Poll `ready()` until it holds, then give Sanic's manager time to see every worker's ack;
    fail as soon as the process exits, or after `timeout` seconds, with `tail()` of its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited {process.returncode} while starting:\n{tail()}")
        if ready():
            time.sleep(ACK_SETTLE_SECONDS)
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} not ready within {timeout} s:\n{tail()}")


def kill_group(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group and reap its leader; safe on one already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
        process.communicate(timeout=10)


class ServerProcess:
    """One `catalog serve` process group on 127.0.0.1:<free port>."""

    def __init__(self, env: Mapping[str, str], *, workers: int = 1) -> None:
        self.port = free_port()
        self.workers = workers
        self.env = {**env, "CATALOG_HOST": "127.0.0.1", "CATALOG_PORT": str(self.port), "CATALOG_WORKERS": str(workers)}
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_dir(self) -> Path:
        return Path(self.env["CATALOG_METRICS_DIR"])

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> ServerProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "catalog", "serve"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group, so close() reaches the workers too
        )
        for stream, sink in ((self._process.stdout, self.stdout), (self._process.stderr, self.stderr)):
            reader = threading.Thread(target=_read_lines, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)
        wait_ready(self._process, self._ready, timeout, "catalog serve", self.output_tail)
        return self

    def _ready(self) -> bool:
        workers_ready = sum(1 for line in list(self.stdout) if '"Worker ready [' in line)
        return workers_ready >= self.workers and answers(f"{self.url}/livez")

    def poll(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def terminate(self) -> None:
        """SIGTERM to the main process only, as a container runtime sends it."""
        os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self._process is not None, "not started"
        return self._process.wait(timeout=timeout)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and the exit code; TimeoutExpired if it does not exit in time (close() kills it then)."""
        self.terminate()
        code = self.wait(timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def close(self) -> None:
        """Kill whatever is left of the process group; safe to call any time, any number of times."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)

    def log_records(self) -> list[dict[str, Any]]:
        """Every stdout line that is a JSON object (the startup banner is the one that is not)."""
        records = []
        for line in list(self.stdout):
            if line.startswith("{"):
                records.append(json.loads(line))
        return records

    def wait_for_record(self, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        """The first JSON log record that `match`es, waiting for the reader thread up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.log_records():
                if match(record):
                    return record
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching log record within {timeout} s:\n{self.output_tail()}")
            time.sleep(0.05)

    def output_tail(self, lines: int = 30) -> str:
        return "\n".join(["--- stdout", *self.stdout[-lines:], "--- stderr", *self.stderr[-lines:]])

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_lines(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))
    stream.close()


def metrics_pids(metrics_dir: Path, kind: str = "histogram") -> set[int]:
    """Worker pids that wrote `kind` samples to the prometheus-client multiprocess directory."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob(f"{kind}_*.db")}
