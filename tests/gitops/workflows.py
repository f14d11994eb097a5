"""Submitting Workflows to the real controller (tools/cluster/argo_workflows.py) and reading its
timeline back: what the gitops tests that run Workflows share."""

from __future__ import annotations

import json
from datetime import datetime

from tools.cluster.argo_workflows import ArgoWorkflows


def create_workflow(argo: ArgoWorkflows, spec: dict, prefix: str) -> str:
    """Create a Workflow of `spec` named `<prefix>-<random>` in the Workflows' namespace; its name."""
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{prefix}-", "namespace": argo.namespace},
        "spec": spec,
    }
    created = argo.plane.kubectl("create", "-f", "-", "-o", "name", input=json.dumps(workflow))
    return created.stdout.strip().split("/")[-1]


def seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def latencies(workflow: dict) -> str:
    """The controller's own timeline: each pod step's start and duration after the Workflow's start."""
    status = workflow["status"]
    pods = sorted((n for n in status["nodes"].values() if n["type"] == "Pod"), key=lambda n: n["startedAt"])
    steps = ", ".join(
        f"{n['displayName']} starts +{seconds(status['startedAt'], n['startedAt']):.0f} s, "
        f"runs {seconds(n['startedAt'], n['finishedAt']):.0f} s"
        for n in pods
    )
    return f"{workflow['metadata']['name']}: {seconds(status['startedAt'], status['finishedAt']):.0f} s in all; {steps}"
