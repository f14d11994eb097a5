"""kubeconform validates offline against schemas generated from the test control plane's
/openapi/v2, including the installed CRDs, and refuses what the API server would refuse."""

from __future__ import annotations

import subprocess

import pytest
import yaml

pytestmark = pytest.mark.cluster

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dev, creationTimestamp: null}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.localhost:5000/catalog@sha256:0000000000000000000000000000000000000000000000000000000000000000
          ports: [{containerPort: 8000}]
          resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 1, memory: 256Mi}}
          readinessProbe: {httpGet: {path: /readyz, port: 8000}}
"""
WORKFLOW_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: catalog-test}
spec:
  entrypoint: main
  templates:
    - name: main
      container: {image: python:3.11-slim, command: [pytest]}
"""
HTTP_ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog}
spec:
  parentRefs: [{name: gateway}]
  rules: [{backendRefs: [{name: catalog, port: 80}]}]
"""
SERVICE_MONITOR = """
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: catalog}
spec:
  selector: {matchLabels: {app: catalog}}
  endpoints: [{port: http, interval: 30s}]
"""


def edited(manifest: str, path: tuple, value) -> str:
    document = yaml.safe_load(manifest)
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return yaml.safe_dump(document)


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        pytest.param(DEPLOYMENT, None, id="deployment-valid"),
        pytest.param(
            edited(DEPLOYMENT, ("spec", "replicas"), "2"),
            "replicas",
            id="deployment-replicas-string",
        ),
        pytest.param(
            edited(
                DEPLOYMENT,
                ("spec", "template", "spec", "containers", 0, "imagePullPolicy2"),
                "Always",
            ),
            "imagePullPolicy2",
            id="deployment-unknown-field",
        ),
        pytest.param(WORKFLOW_TEMPLATE, None, id="workflowtemplate-valid"),
        pytest.param(
            edited(WORKFLOW_TEMPLATE, ("spec", "entrypont"), "main"),
            "entrypont",
            id="workflowtemplate-misspelled",
        ),
        pytest.param(HTTP_ROUTE, None, id="httproute-valid"),
        pytest.param(
            edited(HTTP_ROUTE, ("spec", "hostnames"), "catalog.local"),
            "hostnames",
            id="httproute-wrong-type",
        ),
        pytest.param(SERVICE_MONITOR, None, id="servicemonitor-valid"),
        pytest.param(
            edited(SERVICE_MONITOR, ("spec", "endpoints", 0, "scrapeInterval"), "30s"),
            "scrapeInterval",
            id="servicemonitor-unknown-field",
        ),
    ],
)
def test_kubeconform_offline_schemas(kubeconform, manifest, error):
    result = subprocess.run([*kubeconform, "-"], input=manifest, capture_output=True, text=True, check=False)

    if error is None:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Valid: 1" in result.stdout
    else:
        assert result.returncode == 1, result.stdout + result.stderr
        assert error in result.stdout, result.stdout


def test_kubeconform_refuses_unknown_kind(kubeconform):
    unknown = "apiVersion: example.invalid/v1\nkind: Gadget\nmetadata: {name: x}\n"

    result = subprocess.run([*kubeconform, "-"], input=unknown, capture_output=True, text=True, check=False)

    assert result.returncode != 0
    assert "could not find schema for Gadget" in result.stdout + result.stderr
