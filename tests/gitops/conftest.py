"""gitops-tier fixtures for the pipeline's steps: a seeded bare git remote per test, a cosign key
pair per session, and a HOME of the test's own for the steps' processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gitops.steps_cli import SeededRemote, python_ready
from tests.support.registry import cosign_keypair
from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import missing


@pytest.fixture
def steps_home(tmp_path: Path) -> Path:
    unmet = python_ready()
    if unmet:
        skip_or_fail(f"the pipeline's steps need {unmet}")
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def seeded_remote(tmp_path: Path) -> SeededRemote:
    return SeededRemote(tmp_path)


@pytest.fixture(scope="session")
def cosign_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(private, public): the platform's signing key as the pin step sees it."""
    if missing(["cosign"]):
        skip_or_fail("the pipeline's steps need `make tools` (cosign in .tools/bin)")
    return cosign_keypair(tmp_path_factory.mktemp("cosign"))
