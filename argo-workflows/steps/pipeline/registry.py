"""The registry through crane: tags, the digest a tag names, when an image was built, deleting a
manifest. crane talks plain HTTP to loopback and private addresses (the platform's registry), TLS
to anything else."""

from __future__ import annotations

import json
from datetime import datetime

from pipeline.errors import Failed
from pipeline.proc import last_line, run


class Registry:
    def __init__(self, host: str, repository: str) -> None:
        self.repository = f"{host}/{repository}"

    def tags(self) -> list[str]:
        result = run(["crane", "ls", self.repository], check=False)
        if result.returncode != 0:
            raise Failed(f"cannot list the tags of {self.repository}: {last_line(result.stderr)}")
        return sorted(line for line in result.stdout.split() if line)

    def digest(self, tag: str) -> str:
        return run(["crane", "digest", f"{self.repository}:{tag}"]).stdout.strip()

    def created(self, digest: str) -> datetime | None:
        """The image config's `created` time (the build's time), or None when it has none to read."""
        result = run(["crane", "config", f"{self.repository}@{digest}"], check=False)
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
        result = run(["crane", "delete", f"{self.repository}@{digest}"], check=False)
        if result.returncode != 0:
            raise Failed(
                f"the registry refused to delete {self.repository}@{digest}: {last_line(result.stderr)}; "
                "it must allow deletes (distribution: storage.delete.enabled)"
            )
