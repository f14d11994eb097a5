"""environments/<env>/image.yaml, the pin a workflow edits: exactly four keys under `image:`, below
a header comment that humans wrote and the pipeline keeps as it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import Failed

KEYS = ("repository", "digest", "tag", "sourceCommit")


@dataclass(frozen=True)
class Pin:
    repository: str
    digest: str
    tag: str
    source_commit: str

    @property
    def reference(self) -> str:
        """What the chart renders into the Deployment: repository@digest."""
        return f"{self.repository}@{self.digest}"

    def as_yaml(self) -> dict[str, dict[str, str]]:
        values = (self.repository, self.digest, self.tag, self.source_commit)
        return {"image": dict(zip(KEYS, values, strict=True))}


def path(env: str) -> str:
    """The pin's path inside the repository (what git log and git show take)."""
    return f"environments/{env}/image.yaml"


def parse(text: str, where: str) -> Pin:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise Failed(f"{where}: not YAML ({str(error).splitlines()[0]}); fix the file on the branch") from None
    image = data.get("image") if isinstance(data, dict) else None
    if not isinstance(image, dict) or not all(isinstance(image.get(key), str | int) for key in KEYS):
        raise Failed(f"{where}: no `image:` with {', '.join(KEYS)}; restore the pin file on the branch")
    return Pin(*(str(image[key]) for key in KEYS))


def read(checkout: Path, env: str) -> Pin:
    return parse((checkout / path(env)).read_text(), path(env))


def write(checkout: Path, env: str, pin: Pin) -> None:
    """Rewrite the pin below the file's header comment (its leading comment and blank lines, unchanged)."""
    target = checkout / path(env)
    lines = target.read_text().splitlines(keepends=True)
    header = []
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        header.append(line)
    body = yaml.safe_dump(pin.as_yaml(), sort_keys=False, default_flow_style=False)
    target.write_text("".join(header) + body)
