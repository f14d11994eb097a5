"""How a tier treats a missing prerequisite: locally it skips with a one-line reason, under CI=true it
fails (the root conftest.py also fails any other skip under CI=true)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Locally a missing prerequisite skips its tier with a one-line reason; under CI=true it fails."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a skip would hide this)", pytrace=False)
    pytest.skip(reason)
