"""Fixtures of the observability tests: the pinned helm and Debian's promtool (a missing tool
skips locally and fails under CI=true)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import missing


@pytest.fixture(scope="session")
def helm() -> None:
    if missing(["helm"]):
        skip_or_fail("observability tests render the chart: run `make tools` (.tools/bin lacks helm)")


def _prometheus_package_binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        skip_or_fail(f"{name} not found (apt-get install --no-install-recommends prometheus)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def promtool(helm: None) -> str:
    return _prometheus_package_binary("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _prometheus_package_binary("prometheus")
