"""Render the catalog chart the way ArgoCD would: the Applications come from the ApplicationSet in
bootstrap/argocd (its Go templates run through helm's engine, the same text/template + sprig),
and each environment is `helm template` of the chart path with the value files that Application names."""

from __future__ import annotations

import functools
import re
import subprocess
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import yaml

from tools.cluster.toolbox import REPO_ROOT, run, tool

CHART = REPO_ROOT / "apps" / "catalog" / "chart"
ENVIRONMENTS = REPO_ROOT / "environments"
# Every optional block of the chart on (tests/chart/values).
ALL_FEATURES = REPO_ROOT / "tests" / "chart" / "values" / "all-features.yaml"
ARGOCD = REPO_ROOT / "bootstrap" / "argocd"
POD_KINDS = {"Deployment": ("spec", "template"), "Job": ("spec", "template"), "Pod": ()}


@dataclass(frozen=True)
class Rendered:
    """One `helm template` result: the text and its documents (hooks and test pods included)."""

    text: str
    documents: list[dict]

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.documents if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [d for d in self.of_kind(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def pod_templates(self) -> list[tuple[dict, dict]]:
        """(owner, pod template {metadata, spec}) for every Deployment, Job and Pod."""
        found = []
        for document in self.documents:
            path = POD_KINDS.get(document["kind"])
            if path is None:
                continue
            node = document
            for key in path:
                node = node[key]
            found.append((document, node))
        return found


def helm(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([tool("helm"), *args], check=check)


def render(
    *value_files: Path,
    values: dict | None = None,
    release: str = "catalog",
    namespace: str = "catalog-test",
    check: bool = True,
):
    """`helm template` of the chart with `value_files`, then `values` on top as one more value file;
    returns Rendered, or helm's failed process when check=False and helm refuses."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as extra:
        if values is not None:
            yaml.safe_dump(values, extra)
            extra.flush()
            value_files = (*value_files, Path(extra.name))
        args = ["template", release, CHART, "--namespace", namespace]
        for file in value_files:
            args += ["--values", file]
        result = helm(*args, check=check)
    if result.returncode != 0:
        return result
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    return Rendered(result.stdout, documents)


def environments() -> tuple[str, ...]:
    """The environments: the folders under environments/ that hold a values.yaml, by name."""
    return tuple(sorted(folder.parent.name for folder in ENVIRONMENTS.glob("*/values.yaml")))


@functools.cache
def argocd_documents() -> tuple[dict, ...]:
    """`kustomize build bootstrap/argocd`: what the argocd role applies."""
    built = run([tool("kustomize"), "build", ARGOCD]).stdout
    return tuple(d for d in yaml.safe_load_all(built) if d)


def argocd_object(kind: str) -> dict:
    (found,) = [d for d in argocd_documents() if d["kind"] == kind]
    return found


def generated_directories(appset: dict) -> list[Path]:
    """The folders the git directory generator yields, from its own include/exclude paths, among
    every folder two levels down (so a pattern wider than environments/* shows up)."""
    (generator,) = appset["spec"]["generators"]
    rules = generator["git"]["directories"]
    found = []
    for folder in sorted(p for p in REPO_ROOT.glob("[!.]*/*") if p.is_dir()):
        relative = folder.relative_to(REPO_ROOT).as_posix()
        matches = [rule for rule in rules if fnmatch(relative, rule["path"])]
        if matches and not any(rule.get("exclude") for rule in matches):
            found.append(folder)
    return found


_ACTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def _go_template(text: str, params: dict[str, str]) -> str:
    """Run an ApplicationSet goTemplate through helm's engine ({{.path.x}} -> {{.Values.path.x}})."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp)
        (chart / "templates").mkdir()
        (chart / "Chart.yaml").write_text("apiVersion: v2\nname: appset-template\nversion: 0.0.0\n")
        text = _ACTION.sub(lambda action: re.sub(r"(?<![\w.])\.path\.", ".Values.path.", action[0]), text)
        (chart / "templates" / "out.yaml").write_text(text)
        sets = [f"--set-string=path.{key}={value}" for key, value in params.items()]
        return helm("template", "x", chart, *sets).stdout  # empty when the template renders nothing


def _merge(base: dict, patch: dict) -> dict:
    merged = dict(base)
    for key, value in patch.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


@functools.cache
def applications() -> dict[str, dict]:
    """Environment folder name -> the Application the ApplicationSet generates for it."""
    appset = argocd_object("ApplicationSet")
    found = {}
    for folder in generated_directories(appset):
        path = folder.relative_to(REPO_ROOT).as_posix()
        params = {"path": path, "basename": folder.name}
        application = yaml.safe_load(_go_template(yaml.safe_dump(appset["spec"]["template"]), params))
        patch = yaml.safe_load(_go_template(appset["spec"].get("templatePatch", ""), params)) or {}
        found[folder.name] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **_merge(application, patch)}
    return found


def value_files(application: dict) -> list[Path]:
    """The Application's helm value files, resolved against its chart path as ArgoCD does."""
    source = application["spec"]["source"]
    chart = REPO_ROOT / source["path"]
    return [(chart / name).resolve() for name in source["helm"]["valueFiles"]]


def render_application(application: dict, namespace: str | None = None) -> Rendered:
    """The chart as `application` renders it; into `namespace` instead of its destination if given."""
    source = application["spec"]["source"]
    assert (REPO_ROOT / source["path"]).resolve() == CHART, source["path"]
    return render(
        *value_files(application),
        release=source["helm"]["releaseName"],
        namespace=namespace or application["spec"]["destination"]["namespace"],
    )


def image_pin(environment: str) -> dict:
    """environments/<env>/image.yaml's `image` block: what the pipeline pinned."""
    return yaml.safe_load((ENVIRONMENTS / environment / "image.yaml").read_text())["image"]


def label_selector_matches(selector: dict, labels: dict) -> bool:
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) against a label set."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True
