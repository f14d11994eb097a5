"""The pinned upstream CRDs are installed with their full schemas: the API server itself accepts a
valid custom resource and refuses one that breaks the schema (strict field validation)."""

from __future__ import annotations

import copy
import json

import pytest

pytestmark = pytest.mark.cluster

WORKFLOW = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "metadata": {"name": "hello"},
    "spec": {
        "entrypoint": "main",
        "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}],
    },
}
WORKSPACE_CLAIM = {
    "metadata": {"name": "workspace", "labels": {"app.kubernetes.io/part-of": "catalog-ci"}},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}
EVENT_BINDING = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "WorkflowEventBinding",
    "metadata": {"name": "ci-on-push"},
    "spec": {"event": {"selector": 'discriminator == "push"'}, "submit": {"workflowTemplateRef": {"name": "ci"}}},
}
SERVICE_MONITOR = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "catalog"},
    "spec": {
        "selector": {"matchLabels": {"app": "catalog"}},
        "endpoints": [{"port": "http", "path": "/metrics"}],
    },
}
PROMETHEUS_RULE = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "catalog"},
    "spec": {"groups": [{"name": "catalog", "rules": [{"alert": "CatalogDown", "expr": "up == 0", "for": "5m"}]}]},
}
HTTP_ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "catalog"},
    "spec": {
        "parentRefs": [{"name": "gateway"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": "catalog", "port": 80}],
            }
        ],
    },
}
APPLICATION = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "catalog-dev"},
    "spec": {
        "project": "catalog",
        "source": {
            "repoURL": "https://git.example/catalog.git",
            "path": "apps/catalog/chart",
            "targetRevision": "main",
        },
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "catalog-dev"},
    },
}
_PODS_CREATED = {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
_ANY_KEY = "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----"
_SIGNED = "images.containers.map(image, verifyImageSignatures(image, [attestors.cosign])).all(e, e > 0)"
IMAGE_POLICY = {
    "apiVersion": "policies.kyverno.io/v1",
    "kind": "ImageValidatingPolicy",
    "metadata": {"name": "catalog-signed"},
    "spec": {
        "matchConstraints": {"resourceRules": [_PODS_CREATED]},
        "matchImageReferences": [{"glob": "registry.localhost:5000/*"}],
        "attestors": [{"name": "cosign", "cosign": {"key": {"data": _ANY_KEY}}}],
        "validations": [{"expression": _SIGNED}],
    },
}


def broken(document: dict, path: tuple, value, *, drop: str | None = None) -> dict:
    """A copy of `document` with `value` set at `path` (and key `drop` removed there)."""
    result = copy.deepcopy(document)
    node = result
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    if drop is not None:
        del node[drop]
    return result


CASES = [
    pytest.param(WORKFLOW, None, id="workflow-valid"),
    pytest.param(
        broken(WORKFLOW, ("spec", "entrypont"), "main", drop="entrypoint"),
        'unknown field "spec.entrypont"',
        id="workflow-misspelled-field",
    ),
    pytest.param(
        broken(WORKFLOW, ("spec", "templates"), "main"),
        "spec.templates: Invalid value",
        id="workflow-wrong-type",
    ),
    # An embedded ObjectMeta keeps its fields: the workspace claim of a real pipeline is named.
    pytest.param(
        broken(WORKFLOW, ("spec", "volumeClaimTemplates"), [WORKSPACE_CLAIM]),
        None,
        id="workflow-volumeclaimtemplate-named",
    ),
    pytest.param(
        broken(WORKFLOW, ("spec", "volumeClaimTemplates"), [broken(WORKSPACE_CLAIM, ("spec", "accessMode"), "x")]),
        'unknown field "spec.volumeClaimTemplates[0].spec.accessMode"',
        id="workflow-volumeclaimtemplate-misspelled-field",
    ),
    pytest.param(EVENT_BINDING, None, id="workfloweventbinding-valid"),
    # ... but not a WorkflowEventBinding's: Argo's install publishes that CRD in full and prunes it.
    pytest.param(
        broken(EVENT_BINDING, ("spec", "submit", "metadata"), {"labels": {"catalog-platform/trigger": "push"}}),
        'unknown field "spec.submit.metadata.labels"',
        id="workfloweventbinding-submit-metadata-labelled",
    ),
    pytest.param(SERVICE_MONITOR, None, id="servicemonitor-valid"),
    pytest.param(
        broken(SERVICE_MONITOR, ("spec", "endpoints"), [{"port": "http", "scrapeInterval": "30s"}]),
        'unknown field "spec.endpoints[0].scrapeInterval"',
        id="servicemonitor-unknown-field",
    ),
    pytest.param(PROMETHEUS_RULE, None, id="prometheusrule-valid"),
    pytest.param(HTTP_ROUTE, None, id="httproute-valid"),
    pytest.param(
        broken(HTTP_ROUTE, ("spec", "rules", 0, "matches", 0, "path", "type"), "Glob"),
        "Unsupported value",
        id="httproute-bad-enum",
    ),
    pytest.param(APPLICATION, None, id="argocd-application-valid"),
    pytest.param(
        broken(APPLICATION, ("spec", "destination", "cluster"), "in-cluster"),
        'unknown field "spec.destination.cluster"',
        id="argocd-application-unknown-field",
    ),
    pytest.param(IMAGE_POLICY, None, id="kyverno-imagevalidatingpolicy-valid"),
    pytest.param(
        broken(IMAGE_POLICY, ("spec", "validationActions"), ["Block"]),
        "Unsupported value",
        id="kyverno-imagevalidatingpolicy-bad-action",
    ),
]


@pytest.mark.parametrize(("document", "error"), CASES)
def test_custom_resource_validated_server_side(control_plane, new_namespace, document, error):
    namespace = new_namespace()
    namespaced = document["kind"] != "ImageValidatingPolicy"
    scope = ["-n", namespace] if namespaced else []

    result = control_plane.kubectl(
        "create", *scope, "--dry-run=server", "--validate=strict", "-f", "-",
        input=json.dumps(document), check=False,
    )  # fmt: skip

    if error is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode != 0, f"the API server accepted an invalid {document['kind']}"
        assert error in result.stderr, result.stderr
