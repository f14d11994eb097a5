"""The scan gate's allow-list, Trivy's `.trivyignore.yaml`: every waiver must say why (`statement`)
and until when (`expired_at`, YYYY-MM-DD). Trivy itself drops a waiver at the start of its
`expired_at` day, silently; the gate reads the file first, refuses an entry without a reason or a
date, and names the waivers that no longer suppress anything."""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.errors import UsageError

# The finding kinds Trivy's YAML ignore file has; anything else is a typo Trivy would ignore.
KINDS = ("vulnerabilities", "misconfigurations", "secrets", "licenses")


@dataclass(frozen=True)
class Waiver:
    id: str
    statement: str
    expires: datetime.date

    def expired(self, today: datetime.date) -> bool:
        # Trivy compares the start of the expiry day (00:00 UTC) with now: that day is already out.
        return self.expires <= today


def read(path: Path) -> list[Waiver]:
    """Every waiver of the file, or UsageError naming the first entry that breaks the rules."""
    where = f"argument --allow-list: {path}"
    if path.suffix not in (".yaml", ".yml"):
        # Trivy reads an ignore file as YAML only by its suffix; otherwise as one id per line.
        raise UsageError(f"{where} must end in .yaml or .yml; Trivy would read it as a plain .trivyignore")
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise UsageError(f"{where} cannot be read ({error.strerror}); give the allow-list file") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{where} is not YAML ({' '.join(str(error).split())}); fix its syntax") from None
    if document is None:
        return []
    if not isinstance(document, dict) or set(document) - set(KINDS):
        raise UsageError(f"{where} must be a mapping with only the keys {', '.join(KINDS)}; see Trivy's ignore file")
    waivers = []
    for kind in KINDS:
        entries = document.get(kind) or []
        if not isinstance(entries, list):
            raise UsageError(f"{where}: {kind} must be a list of entries")
        for index, entry in enumerate(entries):
            waivers.append(_waiver(entry, f"{where}: {kind}[{index}]"))
    return waivers


def _waiver(entry: object, where: str) -> Waiver:
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"].strip():
        raise UsageError(f"{where} has no id; give the finding's id, e.g. CVE-2025-12345")
    where = f"{where} ({entry['id']})"
    statement = entry.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise UsageError(f"{where} has no statement; say why the finding may ship, and who re-checks it")
    expires = entry.get("expired_at")
    if isinstance(expires, str):
        with contextlib.suppress(ValueError):  # not a date: refused below
            expires = datetime.date.fromisoformat(expires)
    if isinstance(expires, datetime.datetime):
        expires = expires.date()
    if not isinstance(expires, datetime.date):
        raise UsageError(f"{where} has no expired_at date; give the day the waiver ends, YYYY-MM-DD")
    return Waiver(entry["id"], statement.strip(), expires)
