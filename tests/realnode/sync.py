"""A rendered chart installed the way Argo CD syncs an Application: its PreSync hooks first, wave by
wave (each wave's Jobs run to completion before the next), then every other document in the order
`helm template` prints them (helm's install order by kind, which Argo CD's kind order follows),
until the Deployments have rolled out; hooks whose delete policy says HookSucceeded go at the end.
`helm test` pods are not part of a sync (Argo CD ignores helm's test hooks): `run_helm_tests`
runs them as `helm test` does."""

from __future__ import annotations

import json
import time

from tools.cluster.controlplane import ControlPlane

from .pods import get

ARGOCD_HOOK = "argocd.argoproj.io/hook"
HELM_HOOK = "helm.sh/hook"
ENDED = ("Succeeded", "Failed")


def _annotations(document: dict) -> dict:
    return document["metadata"].get("annotations") or {}


def _wave(document: dict) -> int:
    return int(_annotations(document).get("argocd.argoproj.io/sync-wave", "0"))


def _delete_policies(document: dict) -> set[str]:
    return set(_annotations(document).get("argocd.argoproj.io/hook-delete-policy", "").split(","))


def in_namespace(documents: list[dict], namespace: str) -> list[dict]:
    """The documents as Argo CD applies them: into the Application's destination namespace."""
    return [{**d, "metadata": {**d["metadata"], "namespace": namespace}} for d in documents]


def presync_hooks(documents: list[dict]) -> list[dict]:
    return [d for d in documents if "PreSync" in _annotations(d).get(ARGOCD_HOOK, "").split(",")]


def helm_tests(documents: list[dict]) -> list[dict]:
    return [d for d in documents if "test" in _annotations(d).get(HELM_HOOK, "").split(",")]


def resources(documents: list[dict]) -> list[dict]:
    """What a sync applies outside its hooks."""
    return [d for d in documents if not ({ARGOCD_HOOK, HELM_HOOK} & _annotations(d).keys())]


def sync(plane: ControlPlane, documents: list[dict], namespace: str, timeout: float = 300) -> dict[str, dict]:
    """Sync `documents` (a rendered chart) into `namespace`; returns once every Deployment has
    rolled out, with the final status of each hook Job by name (the Jobs themselves may be gone)."""
    documents = in_namespace(documents, namespace)
    hooks = presync_hooks(documents)
    jobs = {}
    for wave in sorted({_wave(hook) for hook in hooks}):
        batch = [hook for hook in hooks if _wave(hook) == wave]
        for hook in batch:
            if "BeforeHookCreation" in _delete_policies(hook):
                _delete(plane, hook)
        plane.apply(batch)
        for job in (hook for hook in batch if hook["kind"] == "Job"):
            jobs[job["metadata"]["name"]] = wait_job(plane, job["metadata"]["name"], namespace, timeout)
    applied = resources(documents)
    plane.apply(applied)
    for deployment in (d for d in applied if d["kind"] == "Deployment"):
        rollout = plane.kubectl(
            "rollout", "status", f"deployment/{deployment['metadata']['name']}", "-n", namespace,
            f"--timeout={timeout:.0f}s", check=False,
        )  # fmt: skip
        assert rollout.returncode == 0, f"{rollout.stderr}\n{explain(plane, namespace)}"
    for hook in hooks:
        if "HookSucceeded" in _delete_policies(hook):
            _delete(plane, hook)
    return jobs


def wait_job(plane: ControlPlane, name: str, namespace: str, timeout: float) -> dict:
    """The Job's status once Complete, with `nodes`: where its pods ran; fails with its pods' logs
    when it Failed or ran out of time."""
    deadline = time.monotonic() + timeout
    while True:
        job = get(plane, "job", name, namespace)
        conditions = {c["type"]: c["status"] for c in job.get("status", {}).get("conditions", [])}
        if conditions.get("Complete") == "True":
            listed = plane.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={name}", "-o", "json").stdout
            return {**job["status"], "nodes": sorted({p["spec"]["nodeName"] for p in json.loads(listed)["items"]})}
        if conditions.get("Failed") == "True" or time.monotonic() > deadline:
            logs = plane.kubectl("logs", "-n", namespace, f"job/{name}", "--all-containers", check=False)
            status = json.dumps(job.get("status"))
            raise AssertionError(f"job {name} did not complete: {status}\n{logs.stdout}\n{explain(plane, namespace)}")
        time.sleep(0.5)


def run_helm_tests(plane: ControlPlane, documents: list[dict], namespace: str, timeout: float = 120) -> dict:
    """`helm test`: each test pod run to its end; returns {pod name: (phase, node, logs)}. The pods
    reach the release's Services by the short names they use through hostAliases set to the
    Services' ClusterIPs: this cluster has no DNS; kube-proxy still routes."""
    documents = in_namespace(documents, namespace)
    aliases = [
        {"ip": get(plane, "service", s["metadata"]["name"], namespace)["spec"]["clusterIP"],
         "hostnames": [s["metadata"]["name"]]}
        for s in resources(documents) if s["kind"] == "Service"
    ]  # fmt: skip
    results = {}
    for pod in helm_tests(documents):
        name = pod["metadata"]["name"]
        plane.kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait=true")
        plane.apply([{**pod, "spec": {**pod["spec"], "hostAliases": aliases}}])
        deadline = time.monotonic() + timeout
        while (phase := (live := get(plane, "pod", name, namespace))["status"].get("phase")) not in ENDED:
            assert time.monotonic() < deadline, f"helm test pod {name} still {phase} after {timeout:.0f}s"
            time.sleep(0.5)
        results[name] = (phase, live["spec"]["nodeName"], plane.kubectl("logs", "-n", namespace, name).stdout)
        if phase == "Succeeded" and "hook-succeeded" in _annotations(pod).get("helm.sh/hook-delete-policy", ""):
            plane.kubectl("delete", "pod", name, "-n", namespace, "--wait=false")
    return results


def explain(plane: ControlPlane, namespace: str) -> str:
    """The namespace's pods and latest events, for a failure message."""
    pods = plane.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
    events = plane.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout
    return f"{pods}\n" + "\n".join(events.splitlines()[-25:])


def _delete(plane: ControlPlane, document: dict) -> None:
    metadata = document["metadata"]
    plane.kubectl(
        "delete", document["kind"], metadata["name"], "-n", metadata["namespace"], "--ignore-not-found",
        "--wait=true", "--cascade=foreground",
    )  # fmt: skip
