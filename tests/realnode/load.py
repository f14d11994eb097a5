"""A bounded HTTP load from the host: GETs of one URL at a steady rate, from a thread of its own,
until stopped or until its request count or its time runs out, whichever comes first."""

from __future__ import annotations

import threading
import time
from typing import Self

import httpx


class BoundedLoad:
    """`with BoundedLoad(url) as load:` sends while the block runs (never past its bounds);
    `load.sent` and `load.failed` count the requests and those not answered 2xx."""

    def __init__(self, url: str, *, rate: float = 200, max_requests: int = 50_000, max_seconds: float = 240) -> None:
        self.url = url
        self.rate = rate
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set() and self.sent < self.max_requests:
                elapsed = time.monotonic() - began
                if elapsed > self.max_seconds:
                    return
                ahead = self.sent / self.rate - elapsed
                if ahead > 0:
                    self._stop.wait(ahead)
                    continue
                self.sent += 1
                try:
                    if not client.get(self.url).is_success:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
