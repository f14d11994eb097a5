"""Chart fixtures: every environment rendered once per session, as its ArgoCD Application says."""

from __future__ import annotations

import pytest

from tests.support import render
from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import missing


@pytest.fixture(scope="session")
def chart_tools() -> None:
    absent = missing(["helm", "kustomize"])
    if absent:
        skip_or_fail(f"chart tests need `make tools` (.tools/bin lacks {', '.join(absent)})")


@pytest.fixture(scope="session")
def applications(chart_tools) -> dict[str, dict]:
    return render.applications()


@pytest.fixture(scope="session")
def rendered(applications) -> dict[str, render.Rendered]:
    """Environment name -> its rendered chart; `all-features` turns every optional block on."""
    out = {name: render.render_application(app) for name, app in applications.items()}
    out["all-features"] = render.render(render.ALL_FEATURES)
    return out
