"""Chart fixtures: every environment rendered once per session, as its ArgoCD Application says."""

from __future__ import annotations

import pytest

from tests.support import chart
from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import missing


@pytest.fixture(scope="session")
def chart_tools() -> None:
    absent = missing(["helm", "kustomize"])
    if absent:
        skip_or_fail(f"chart tests need `make tools` (.tools/bin lacks {', '.join(absent)})")


@pytest.fixture(scope="session")
def applications(chart_tools) -> dict[str, dict]:
    return chart.applications()


@pytest.fixture(scope="session")
def rendered(applications) -> dict[str, chart.Rendered]:
    """Environment name -> its rendered chart; `all-features` turns every optional block on."""
    out = {name: chart.render_application(app) for name, app in applications.items()}
    out["all-features"] = chart.render(chart.ALL_FEATURES)
    return out
