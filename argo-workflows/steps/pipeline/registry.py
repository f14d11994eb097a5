"""The registry through crane: tags, the digest a tag names, when an image was built, deleting a
manifest. crane falls back to plain HTTP by itself only for loopback, private IP addresses and
*.localhost; a plain-HTTP registry under any other name (the platform's own, host.docker.internal)
needs `plain_http`: crane's --insecure, which also skips certificate checks."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

from pipeline.errors import Failed
from pipeline.proc import last_line, run


class Registry:
    def __init__(self, host: str, repository: str, *, plain_http: bool = False) -> None:
        self.repository = f"{host}/{repository}"
        self.plain_http = plain_http

    def _crane(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(["crane", *(["--insecure"] if self.plain_http else []), *args], check=check)

    def tags(self) -> list[str]:
        result = self._crane("ls", self.repository, check=False)
        if result.returncode != 0:
            hint = ""
            if "server gave HTTP response to HTTPS client" in result.stderr:
                hint = "; the registry answers plain HTTP: give --plain-http"
            raise Failed(f"cannot list the tags of {self.repository}: {last_line(result.stderr)}{hint}")
        return sorted(line for line in result.stdout.split() if line)

    def digest(self, tag: str) -> str:
        return self._crane("digest", f"{self.repository}:{tag}").stdout.strip()

    def created(self, digest: str) -> datetime | None:
        """The image config's `created` time (the build's time), or None when it has none to read."""
        result = self._crane("config", f"{self.repository}@{digest}", check=False)
        if result.returncode != 0:
            return None
        try:
            created = datetime.fromisoformat(json.loads(result.stdout)["created"])
        except (ValueError, KeyError, TypeError):
            return None
        return created if created.tzinfo else None

    def delete(self, digest: str) -> None:
        """Delete a manifest by digest (the registry drops every tag naming it); blobs go at the
        registry's own garbage collection."""
        result = self._crane("delete", f"{self.repository}@{digest}", check=False)
        if result.returncode != 0:
            raise Failed(
                f"the registry refused to delete {self.repository}@{digest}: {last_line(result.stderr)}; "
                "it must allow deletes (distribution: storage.delete.enabled)"
            )
