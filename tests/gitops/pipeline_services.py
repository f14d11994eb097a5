"""What the `ci` pipeline's pods talk to besides git and the registry, on the real node's bridge
address (pods have no way out of the machine): a package index over HTTPS holding every wheel the
test step and the image build install, and an artifact store for the reports (Argo's
Artifactory driver: plain HTTP PUT and GET behind basic auth)."""

from __future__ import annotations

import functools
import hashlib
import html
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tools.cluster.pki import Pki, issue_serving_certificate
from tools.cluster.processes import ProcessGroup
from tools.cluster.toolbox import REPO_ROOT, connects, free_port, run

CATALOG = REPO_ROOT / "apps" / "catalog"
SERVER = Path(__file__).with_name("fileserver.py")
WHEELS_CACHE = REPO_ROOT / "var" / "cache" / "pipeline-wheels"
# The test step's own tool, pinned in argo-workflows/templates/test.yaml beside the extras it installs.
TEST_STEP_EXTRA = re.compile(r"\b(coverage==[0-9.]+)")


class FileServer:
    """tests/gitops/fileserver.py serving `root` on `address`:<free port>, a child of a
    ProcessGroup in `state` (it dies with the harness; `stop()` ends it)."""

    def __init__(self, name: str, root: Path, address: str, state: Path) -> None:
        self.name = name
        self.root = root
        self.address = address
        self.port = free_port()
        self.state = state
        self._processes = ProcessGroup(state, detached=False)
        self.scheme = "http"

    def start(self, *flags: str, timeout: float = 20) -> FileServer:
        self.state.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            str(SERVER),
            "--root",
            str(self.root),
            "--address",
            self.address,
            "--port",
            str(self.port),
        ]
        self._processes.start(self.name, [*args, *flags])
        answers = functools.partial(connects, self.address, self.port)
        self._processes.wait(self.name, answers, timeout, owner=f"{self.name} on {self.address}")
        return self

    def start_tls(self, pki: Pki, timeout: float = 20) -> FileServer:
        """Serve HTTPS with a certificate for the address, signed by `pki`'s CA."""
        issue_serving_certificate(pki, self.state, self.name, self.name, [self.address])
        self.scheme = "https"
        return self.start(
            "--tls-cert", str(self.state / f"{self.name}.crt"), "--tls-key", str(self.state / f"{self.name}.key"),
            timeout=timeout,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}:{self.port}"

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self._processes.children]

    def stop(self) -> None:
        self._processes.stop()


def pipeline_requirements() -> list[str]:
    """Every requirement the test step and the image build install from the index: pip, the
    service's build backend, its dependencies and its test and lint extras, the test step's
    coverage. Versions come from apps/catalog/constraints.txt."""
    project = tomllib.loads((CATALOG / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    test_step = (REPO_ROOT / "argo-workflows" / "templates" / "test.yaml").read_text()
    return [
        "pip",
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *extras["test"],
        *extras["lint"],
        *TEST_STEP_EXTRA.findall(test_step),
    ]


def wheel_index() -> Path:
    """A PEP 503 index (simple/<project>/index.html) of the wheels `pipeline_requirements()` needs,
    downloaded once per requirement set and constraints file (var/cache/pipeline-wheels/<hash>)."""
    requirements = pipeline_requirements()
    constraints = CATALOG / "constraints.txt"
    key = hashlib.sha256("\n".join([*requirements, constraints.read_text()]).encode()).hexdigest()[:16]
    index = WHEELS_CACHE / key
    if (index / "simple" / "index.html").exists():
        return index
    partial = WHEELS_CACHE / f"{key}.partial"
    subprocess.run(["rm", "-rf", str(partial)], check=True)
    files = partial / "files"
    # The pods run Debian's Python 3.11 on x86_64, as this host does: the host's pip picks their wheels.
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--only-binary=:all:",
         "-c", str(constraints), "-d", str(files), *requirements],
        timeout=900,
    )  # fmt: skip
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(files.glob("*.whl")):
        projects.setdefault(_normalized(wheel.name.split("-")[0]), []).append(wheel)
    simple = partial / "simple"
    for project, wheels in projects.items():
        page = simple / project / "index.html"
        page.parent.mkdir(parents=True)
        links = "".join(
            f'<a href="../../files/{html.escape(w.name)}#sha256={_sha256(w)}">{html.escape(w.name)}</a>\n'
            for w in wheels
        )
        page.write_text(f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n")
    listing = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{listing}</body></html>\n")
    partial.replace(index)
    return index


def _normalized(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
