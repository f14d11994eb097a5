"""The upstream charts and manifests the ci inventory installs, assembled into .tools/upstream from
the modules pinned in tools/upstream/go.mod (Go module cache, checked against go.sum) as
tools/upstream/artifacts.yml lists them. `make upstream` runs it; so do the Ansible tests.

Each artifact is built in a scratch directory and renamed into place, so an interrupted run never
leaves half a chart behind; a stamp of the inputs makes a rerun with nothing changed a no-op."""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import yaml

from tools.cluster.crds import module_dir
from tools.cluster.toolbox import REPO_ROOT, TOOLS_DIR, run, tool

UPSTREAM_MODULE_DIR = REPO_ROOT / "tools" / "upstream"
ARTIFACTS_FILE = UPSTREAM_MODULE_DIR / "artifacts.yml"
TARGET = TOOLS_DIR / "upstream"
SOURCES = TARGET / "sources.json"


def _inputs_digest() -> str:
    digest = hashlib.sha256()
    for file in (ARTIFACTS_FILE, UPSTREAM_MODULE_DIR / "go.mod", UPSTREAM_MODULE_DIR / "go.sum", Path(__file__)):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _source(spec: dict) -> Path:
    path = module_dir(UPSTREAM_MODULE_DIR, spec["module"]) / spec["path"]
    if not path.exists():
        raise RuntimeError(f"{spec['module']} has no {spec['path']} at the pinned version")
    return path


def _copy_tree(source: Path, target: Path) -> None:
    """Copy out of the read-only module cache; the copy is writable so the next build can replace it."""
    shutil.copytree(source, target)
    for entry in [target, *target.rglob("*")]:
        entry.chmod(entry.stat().st_mode | stat.S_IWUSR)


def _build(name: str, spec: dict, scratch: Path) -> dict:
    built = scratch / name
    if "chart" in spec:
        _copy_tree(_source(spec["chart"]), built)
        for dependency in spec.get("dependencies", []):
            source = _source(dependency)
            target = built / "charts" / source.name
            if target.exists():
                raise RuntimeError(f"{name}: charts/{source.name} is already in the chart")
            _copy_tree(source, target)
        declared = {d["name"] for d in yaml.safe_load((built / "Chart.yaml").read_text()).get("dependencies") or []}
        present = {p.name for p in (built / "charts").iterdir()} if (built / "charts").is_dir() else set()
        if declared - present:
            raise RuntimeError(f"{name}: Chart.yaml needs {sorted(declared - present)}; add them to artifacts.yml")
    elif "file" in spec:
        shutil.copyfile(_source(spec["file"]), built)
    elif "kustomize" in spec:
        built.write_text(run([tool("kustomize"), "build", str(_source(spec["kustomize"]))]).stdout)
    else:
        raise RuntimeError(f"{name}: artifacts.yml gives neither chart, file nor kustomize")
    origin = spec.get("chart") or spec.get("file") or spec.get("kustomize")
    record = {"module": origin["module"], "path": origin["path"]}
    if built.is_file():
        record["sha256"] = hashlib.sha256(built.read_bytes()).hexdigest()
    return record


def assemble() -> dict[str, dict]:
    """Build every artifact (unless the stamp says they are current); return sources.json. Runs
    that assemble at once (`make test`'s two workers) take turns, so none reads a half-built set."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with (TOOLS_DIR / ".upstream.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _assemble()


def _assemble() -> dict[str, dict]:
    digest = _inputs_digest()
    if SOURCES.exists():
        recorded = json.loads(SOURCES.read_text())
        if recorded.get("inputs") == digest and all((TARGET / n).exists() for n in recorded["artifacts"]):
            return recorded["artifacts"]
    specs = yaml.safe_load(ARTIFACTS_FILE.read_text())
    TARGET.mkdir(parents=True, exist_ok=True)
    records = {}
    with tempfile.TemporaryDirectory(dir=TARGET, prefix=".build-") as scratch:
        for name, spec in specs.items():
            records[name] = _build(name, spec, Path(scratch))
        for name in specs:
            final = TARGET / name
            if final.is_dir():
                shutil.rmtree(final)
            elif final.exists():
                final.unlink()
            (Path(scratch) / name).rename(final)
    SOURCES.write_text(json.dumps({"inputs": digest, "artifacts": records}, indent=2, sort_keys=True))
    return records


if __name__ == "__main__":
    for artifact, origin in assemble().items():
        print(f"upstream: .tools/upstream/{artifact} <- {origin['module']} {origin['path']}")
    sys.exit(0)
