"""`make tools` installs what tools/ pins: each binary reports the version its go.mod names (the
link flags tell the truth), helm renders for the pinned Kubernetes minor, and `argo lint
--offline` works without a server."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.support.tiers import skip_or_fail
from tools.cluster.toolbox import missing, pinned_version, tool

pytestmark = pytest.mark.static

# binary, arguments, module directory under tools/, module whose version the output must show
VERSION_CASES = [
    ("helm", ["version", "--short"], "", "helm.sh/helm/v3"),
    ("kubeconform", ["-v"], "", "github.com/yannh/kubeconform"),
    ("kustomize", ["version"], "", "sigs.k8s.io/kustomize/kustomize/v5"),
    ("yq", ["--version"], "", "github.com/mikefarah/yq/v4"),
    ("crane", ["version"], "", "github.com/google/go-containerregistry"),
    ("kwok", ["--version"], "", "sigs.k8s.io/kwok"),
    ("argo", ["version", "--short"], "argo", "github.com/argoproj/argo-workflows/v3"),
    ("argoexec", ["version"], "argoexec", "github.com/argoproj/argo-workflows/v3"),
    ("cosign", ["version"], "cosign", "github.com/sigstore/cosign/v2"),
    ("registry", ["--version"], "registry", "github.com/distribution/distribution/v3"),
    ("kube-linter", ["version"], "kube-linter", "golang.stackrox.io/kube-linter"),
    ("etcd", ["--version"], "etcd", "go.etcd.io/etcd/server/v3"),
    ("kube-apiserver", ["--version"], "kubernetes", "k8s.io/kubernetes"),
    ("kube-controller-manager", ["--version"], "kubernetes", "k8s.io/kubernetes"),
    ("kube-scheduler", ["--version"], "kubernetes", "k8s.io/kubernetes"),
    ("kubectl", ["version", "--client"], "kubernetes", "k8s.io/kubernetes"),
    ("kubelet", ["--version"], "kubernetes", "k8s.io/kubernetes"),
    ("kube-proxy", ["--version"], "kubernetes", "k8s.io/kubernetes"),
    ("containerd", ["--version"], "containerd", "github.com/containerd/containerd/v2"),
    ("containerd-shim-runc-v2", ["-v"], "containerd", "github.com/containerd/containerd/v2"),
    ("ctr", ["--version"], "containerd", "github.com/containerd/containerd/v2"),
    ("helm-diff", ["version"], "helm-diff", "github.com/databus23/helm-diff/v3"),
    ("argocd", ["version", "--client"], "argocd", "github.com/argoproj/argo-cd/v3"),
]


def require(*names: str) -> None:
    absent = missing(list(names))
    if absent:
        skip_or_fail(f"needs `make tools` (.tools/bin lacks {', '.join(absent)})")


@pytest.mark.parametrize(
    ("binary", "args", "module_dir", "module"),
    [pytest.param(*case, id=case[0]) for case in VERSION_CASES],
)
def test_tool_reports_pinned_version(binary, args, module_dir, module):
    require(binary)

    result = subprocess.run([tool(binary), *args], capture_output=True, text=True, check=False)

    output = result.stdout + result.stderr
    version = pinned_version(module_dir, module).removeprefix("v")
    assert re.search(rf"\bv?{re.escape(version)}\b", output), f"{binary} says: {output[:400]}"


def test_helm_renders_for_the_pinned_kubernetes_minor(tmp_path):
    require("helm")
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "kube.yaml").write_text("kube: {{ .Capabilities.KubeVersion.Minor }}\n")

    result = subprocess.run([tool("helm"), "template", chart], capture_output=True, text=True, check=True)

    kubernetes_minor = pinned_version("kubernetes", "k8s.io/kubernetes").split(".")[1]
    assert f"kube: {kubernetes_minor}" in result.stdout


@pytest.mark.parametrize(
    ("entrypoint", "clean"),
    [
        pytest.param("main", True, id="valid"),
        pytest.param("mian", False, id="undefined-entrypoint"),
    ],
)
def test_argo_lint_offline(tmp_path, entrypoint, clean):
    require("argo")
    template = tmp_path / "catalog-test.yaml"
    template.write_text(
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\n"
        "metadata: {name: catalog-test}\n"
        f"spec:\n  entrypoint: {entrypoint}\n"
        "  templates:\n    - name: main\n      container: {image: busybox, command: ['true']}\n"
    )

    result = subprocess.run(
        [tool("argo"), "lint", "--offline", "--no-color", template],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "KUBECONFIG": "/dev/null"},
    )

    assert (result.returncode == 0) is clean, result.stdout + result.stderr
    if not clean:
        assert "template name 'mian' undefined" in result.stdout + result.stderr
