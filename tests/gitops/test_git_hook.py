"""argo-workflows/events/post-receive as a bare repository's hook, pushed to with git: a push to
main that changes the source sends argo-server the event the binding ci-on-push matches; pushes
that only move pins, and other branches, send nothing; a refused event never refuses the push."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from email.message import Message
from pathlib import Path

import pytest

from tests.support.loopback import LoopbackServer

pytestmark = pytest.mark.gitops

HOOK = Path(__file__).parents[2] / "argo-workflows" / "events" / "post-receive"
TOKEN = "hook-token"


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)


@pytest.fixture
def repository(tmp_path) -> tuple[Path, Path]:
    """A bare remote with the hook installed, and a clone whose main is already pushed."""
    remote, work = tmp_path / "remote.git", tmp_path / "work"
    _git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    shutil.copy(HOOK, remote / "hooks" / "post-receive")
    _git(tmp_path, "clone", "--quiet", str(remote), str(work))
    for name, text in {"apps/catalog/app.py": "v1\n", "environments/dev/image.yaml": "digest: a\n"}.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    _git(work, "add", ".")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "first")
    _git(work, "push", "--quiet", "origin", "main", env={**os.environ, "ARGO_SERVER": "http://127.0.0.1:9"})
    return remote, work


@pytest.mark.parametrize(
    ("changed", "branch", "status", "sent", "said"),
    [
        pytest.param("apps/catalog/app.py", "main", 200, True, "post-receive: ci submitted for", id="source-change"),
        pytest.param(
            "environments/dev/image.yaml", "main", 200, False, "changes only environments/: no pipeline", id="pin-only"
        ),
        pytest.param("apps/catalog/app.py", "promote/staging/abc", 200, False, "", id="other-branch"),
        pytest.param("apps/catalog/app.py", "main", 403, True, "argo-server did not take the event", id="refused"),
    ],
)
def test_push_sends_the_event_only_for_source_changes_on_main(repository, changed, branch, status, sent, said):
    remote, work = repository
    received: list[tuple[str, Message, bytes]] = []

    def handle(method: str, path: str, headers: Message, body: bytes) -> tuple[int, str, bytes]:
        received.append((path, headers, body))
        return status, "application/json", b"{}"

    (work / changed).write_text("v2\n")
    _git(work, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-am", "change")
    commit = _git(work, "rev-parse", "HEAD").stdout.strip()
    with LoopbackServer(handle) as server:
        pushed = _git(
            work, "push", "origin", f"HEAD:refs/heads/{branch}",
            env={**os.environ, "ARGO_SERVER": server.url, "ARGO_TOKEN": TOKEN},
        )  # fmt: skip

    assert said in pushed.stderr
    assert _git(remote, "rev-parse", branch).stdout.strip() == commit
    if not sent:
        assert received == []
        return
    ((path, headers, body),) = received
    assert path == "/api/v1/events/argo/push"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(body) == {"ref": "refs/heads/main", "after": commit}
