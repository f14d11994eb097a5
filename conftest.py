"""Suite-wide rules: under CI=true a skipped test fails the run, so a missing tool or service can
never turn red into green (locally a skip stays a skip, with its one-line reason in the summary);
and which of `make test`'s two workers runs a test."""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []

# `make test` runs two pytest-xdist workers; this scheduler gives each one half, in file order.
# The real node, the images podman builds for it and the kwok control plane exist once per run, so
# every tier that touches them stays on one worker; the other takes the service's tiers, the
# benchmarks' and observability's (local processes only) and the Ansible tier (a control plane of
# its own), which touch none of them. The halves are sized to take about the same time, so
# together they take the longer one's. (xdist's own `--dist loadgroup` cannot do it here: on
# pytest 9 its group suffix never reaches the test ids.)
_SERVICE_AND_ANSIBLE = ("apps/catalog/tests/", "tests/bench/", "tests/docs/", "tests/observability/", "tests/ansible/")


@pytest.hookimpl(optionalhook=True)  # pytest without xdist (the pipeline's test step) never calls it
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class TwoHalves(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "service-and-ansible" if nodeid.startswith(_SERVICE_AND_ANSIBLE) else "cluster"

    return TwoHalves(config, log)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI") == "true" and _skipped:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"CI=true: {len(_skipped)} skipped test(s) fail the run:", red=True)
            for line in _skipped:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
