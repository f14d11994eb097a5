"""A real Prometheus (Debian's binary) on a free loopback port with a temp TSDB, scraping given
targets and evaluating given rule files; its process group is killed by close() whatever happened."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.server import kill_group
from tools.cluster.toolbox import free_port

START_TIMEOUT_SECONDS = 30.0


class Prometheus:
    def __init__(self, binary: str, directory: Path, targets: list[dict[str, Any]], rule_files: list[Path]) -> None:
        """`targets`: static_configs entries ({"targets": [...], "labels": {...}}), scraped every second;
        rules are evaluated every second too (groups' own intervals are the rule files' business)."""
        self.port = free_port()
        self.directory = directory
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [{"job_name": "catalog", "static_configs": targets}],
        }
        self.config = directory / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))
        self.argv = [
            binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
        ]
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited {self._process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready within {START_TIMEOUT_SECONDS} s:\n{self.log_tail()}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one element) `expr` evaluates to now."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        data = body["data"]
        return data["result"] if data["resultType"] in ("vector", "matrix") else [{"value": data["result"]}]

    def rule_health(self) -> list[dict[str, Any]]:
        groups = httpx.get(f"{self.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:]) if self._log.exists() else ""

    def close(self) -> None:
        if self._process is not None:
            kill_group(self._process)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
