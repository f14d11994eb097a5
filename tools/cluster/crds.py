"""The CustomResourceDefinitions our manifests use, read from the upstream modules pinned in
tools/crds/go.mod (Go module cache, checked against go.sum), and kwok's stage definitions."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml

from tools.cluster.toolbox import REPO_ROOT, TOOLS_DIR, go, run

CRD_MODULE_DIR = REPO_ROOT / "tools" / "crds"
TOOLS_MODULE_DIR = REPO_ROOT / "tools"

# Module -> globs of the CRD files the platform's manifests use (not every CRD upstream ships:
# the API server needs ~0.5 s per MB of schema on two cores). Each glob must match at least one
# CRD, so an upstream move fails loudly here instead of silently installing less.
CRD_SOURCES: dict[str, tuple[str, ...]] = {
    "github.com/argoproj/argo-workflows/v3": tuple(
        f"manifests/base/crds/full/argoproj.io_{plural}.yaml"
        for plural in (
            "workflows",
            "workflowtemplates",
            "clusterworkflowtemplates",
            "cronworkflows",
            "workfloweventbindings",
            "workflowtaskresults",
            # Not in any manifest of ours, but the workflow-controller's informers list them and
            # it stalls without them (the gitops tier runs the real controller).
            "workflowtasksets",
            "workflowartifactgctasks",
        )
    ),
    "github.com/argoproj/argo-cd/v3": ("manifests/crds/*-crd.yaml",),
    "github.com/prometheus-operator/prometheus-operator": tuple(
        f"example/prometheus-operator-crd/monitoring.coreos.com_{plural}.yaml"
        for plural in ("servicemonitors", "podmonitors", "prometheusrules")
    ),
    "sigs.k8s.io/gateway-api": ("config/crd/standard/gateway.networking.k8s.io_*.yaml",),
    "github.com/kyverno/kyverno": (
        "config/crds/policies.kyverno.io/policies.kyverno.io_imagevalidatingpolicies.yaml",
        "config/crds/policies.kyverno.io/policies.kyverno.io_policyexceptions.yaml",
    ),
}
# Argo's "full" CRDs are not structural in two spots: the recursive `inline` template is `{}` and
# `steps` (a list of lists) has no inner `items`; the API server refuses them as published. Only
# those spots are opened (x-kubernetes-preserve-unknown-fields); every other field keeps its schema.
# A third spot is structural but wrong: an embedded ObjectMeta (volumeClaimTemplates[].metadata)
# is a bare `{"type": "object"}`, so its name and labels are unknown fields (refused under strict
# validation, pruned without it). It is opened too where Argo's install (what the argo_workflows
# role applies) keeps the whole spec; the resource's own top-level metadata stays as it is (the API
# server validates that one itself).
NEEDS_STRUCTURAL_FIX = {"github.com/argoproj/argo-workflows/v3"}
# The install publishes these with their full schema, so there an embedded ObjectMeta (a
# WorkflowEventBinding's submit.metadata) is pruned: it stays closed here too.
EMBEDDED_METADATA_PRUNED = {"WorkflowEventBinding", "WorkflowArtifactGCTask"}
FIXED_CRD_CACHE = TOOLS_DIR / "crds"
# kwok needs stage definitions; these are the ones kwokctl uses by default (fast, with leases).
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)
# The namespace of the storage provisioner's helper pods (upstream's, realnode/storage.py). On a
# kwok node such a pod finishes as a Job's pod does, so a claim of a pod kwok runs binds too.
VOLUME_HELPER_NAMESPACE = "local-path-storage"


def _go_env() -> dict[str, str]:
    return {**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"}


def _requires(module_dir: Path) -> dict[str, str]:
    edit = json.loads(run([go(), "mod", "edit", "-json"], cwd=module_dir, env=_go_env()).stdout)
    return {r["Path"]: r["Version"] for r in edit.get("Require") or []}


def module_dir(module_dir: Path, path: str) -> Path:
    """Download (or find) `path` at the version `module_dir`'s go.mod pins; return its cache dir."""
    version = _requires(module_dir)[path]
    result = run(
        [go(), "mod", "download", "-json", f"{path}@{version}"],
        cwd=module_dir,
        env=_go_env(),
        check=False,
    )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {path}@{version}: {info.get('Error', result.stderr)}")
    return Path(info["Dir"])


def crd_files() -> list[Path]:
    """Every CRD file from the pinned modules (kubectl parses them: PyYAML needs seconds per MB)."""
    pinned = _requires(CRD_MODULE_DIR)
    unknown = set(pinned) - set(CRD_SOURCES)
    if unknown:
        raise RuntimeError(f"tools/crds/go.mod pins {sorted(unknown)} but CRD_SOURCES has no globs")
    files = []
    for path, globs in CRD_SOURCES.items():
        root = module_dir(CRD_MODULE_DIR, path)
        for pattern in globs:
            found = [
                file
                for file in sorted(root.glob(pattern))
                if "\nkind: CustomResourceDefinition\n" in file.read_text()[:4096]
            ]
            if not found:
                raise RuntimeError(f"no CRD file matched {pattern} in {path} ({root})")
            if path in NEEDS_STRUCTURAL_FIX:
                found = [_structural_copy(file, f"{path}@{pinned[path]}") for file in found]
            files.extend(found)
    return files


_OPEN = {"x-kubernetes-preserve-unknown-fields": True}


def _make_structural(schema: dict, *, embedded_metadata: bool, root: bool = True) -> None:
    for name, prop in (schema.get("properties") or {}).items():
        if prop == {} or (embedded_metadata and name == "metadata" and not root and prop == {"type": "object"}):
            schema["properties"][name] = {**prop, **_OPEN}
        else:
            _make_structural(prop, embedded_metadata=embedded_metadata, root=False)
    items = schema.get("items")
    if isinstance(items, dict):
        if items.get("type") == "array" and "items" not in items:
            items["items"] = dict(_OPEN)
        _make_structural(items, embedded_metadata=embedded_metadata, root=False)
    if isinstance(schema.get("additionalProperties"), dict):
        _make_structural(schema["additionalProperties"], embedded_metadata=embedded_metadata, root=False)


def _structural_copy(file: Path, module: str) -> Path:
    """A JSON copy of `file` with non-structural spots opened, cached per pinned module version and
    per version of this file (a changed fix must not reuse copies an older one wrote)."""
    recipe = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    target = FIXED_CRD_CACHE / module.replace("/", "_") / f"{file.stem}.{recipe}.json"
    if not target.exists():
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        loader.add_constructor("tag:yaml.org,2002:value", lambda ld, node: ld.construct_scalar(node))
        crd = yaml.load(file.read_text(), Loader=loader)  # noqa: S506 - a safe loader
        embedded_metadata = crd["spec"]["names"]["kind"] not in EMBEDDED_METADATA_PRUNED
        for version in crd["spec"]["versions"]:
            _make_structural(version["schema"]["openAPIV3Schema"], embedded_metadata=embedded_metadata)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(crd))
        partial.replace(target)
    return target


def kwok_stages() -> str:
    """kwok's default node and pod stages from the kwok module pinned in tools/go.mod, and its
    pod-complete stage once more for the volume helper pods."""
    root = module_dir(TOOLS_MODULE_DIR, "sigs.k8s.io/kwok")
    stages = [(root / stage).read_text() for stage in KWOK_STAGES]
    helper = yaml.safe_load((root / "kustomize/stage/pod/fast/pod-complete.yaml").read_text())
    helper["metadata"]["name"] = "volume-helper-complete"
    expressions = helper["spec"]["selector"]["matchExpressions"]
    (owner,) = [e for e in expressions if e["key"] == ".metadata.ownerReferences.[].kind"]
    expressions[expressions.index(owner)] = {
        "key": ".metadata.namespace",
        "operator": "In",
        "values": [VOLUME_HELPER_NAMESPACE],
    }
    return "\n---\n".join([*stages, yaml.safe_dump(helper)])
