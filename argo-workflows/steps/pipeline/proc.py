"""Running git, cosign, crane, kubectl and trivy: output captured, failures turned into one-line errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.errors import Failed


def run(
    args: list[str],
    *,
    cwd: Path | None = None,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with `check`, a non-zero exit raises Failed with the command and its last error line."""
    try:
        result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, input=input, env=env, check=False)
    except FileNotFoundError:
        raise Failed(
            f"{args[0]} not found on PATH: install it (the step image carries git, cosign, crane, kubectl, trivy)"
        ) from None
    if check and result.returncode != 0:
        raise Failed(f"`{' '.join(args[:2])}` exited {result.returncode}: {last_line(result.stderr or result.stdout)}")
    return result


def last_line(text: str) -> str:
    """The last non-empty line of a tool's output: where git, cosign and crane put the reason."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
