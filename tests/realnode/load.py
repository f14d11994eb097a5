"""A bounded load against a URL from the host: a few threads sending GETs, each on a connection of
its own, until the block ends or a count or time cap is reached; every answer and error is
recorded. The rollout test reads the failures, the autoscaling test the CPU it costs the pods."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Load:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    threads: int = 4
    max_requests: int = 5000
    max_seconds: float = 300
    pause: float = 0.02  # between one thread's requests: the machine has two cores to share
    # (monotonic time, "200", or the status and the start of the body, or the error)
    outcomes: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, args=(deadline,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if len(self.outcomes) >= self.max_requests:
                    return
            # A new connection per request: kube-proxy balances connections, not requests, and the
            # rollout is about which pods new connections reach.
            try:
                response = httpx.get(self.url, headers=self.headers, timeout=10)
                outcome = str(response.status_code)
                if response.status_code != 200:
                    outcome += f" {response.headers.get('content-type')} {response.text[:200]}"
            except httpx.HTTPError as error:
                outcome = f"{type(error).__name__} {error}"
            with self._lock:
                self.outcomes.append((time.monotonic(), outcome))
            time.sleep(self.pause)

    @property
    def running(self) -> bool:
        """Whether it still sends: false once a cap is reached."""
        return any(worker.is_alive() for worker in self._workers)

    def failures(self) -> list[tuple[float, str]]:
        return [(at, outcome) for at, outcome in self.outcomes if outcome != "200"]

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until `count` requests have been answered (the load is running)."""
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < count:
            assert time.monotonic() < deadline, f"only {len(self.outcomes)} requests in {timeout:.0f}s: {self.outcomes}"
            time.sleep(0.1)
