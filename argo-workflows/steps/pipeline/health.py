"""Whether an environment runs an image healthy: its Deployment `catalog` in namespace
`catalog-<env>`, read with kubectl and whatever credentials it finds (KUBECONFIG, or the pod's
ServiceAccount in the cluster)."""

from __future__ import annotations

import json

from pipeline.errors import Failed
from pipeline.proc import last_line, run

DEPLOYMENT = "catalog"


def namespace(env: str) -> str:
    return f"catalog-{env}"


def check_running(env: str, reference: str) -> None:
    """Refuse unless the Deployment's `catalog` container is `reference` and every replica is
    updated and available (the rollout finished, nothing older left)."""
    where = f"deployment/{DEPLOYMENT} in {namespace(env)}"
    result = run(
        ["kubectl", "get", "deployment", DEPLOYMENT, "--namespace", namespace(env), "--output", "json"], check=False
    )
    if result.returncode != 0:
        raise Failed(
            f"cannot read {where}: {last_line(result.stderr)}; {env} must run the image first, or pass --force"
        )
    deployment = json.loads(result.stdout)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    image = next((c["image"] for c in containers if c["name"] == DEPLOYMENT), containers[0]["image"])
    if image != reference:
        raise Failed(f"{where} runs {image}, not {reference}; promote what {env} runs, or pass --force")
    wanted = deployment["spec"].get("replicas", 1)
    status = deployment.get("status", {})
    settled = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
    counts = {key: status.get(key, 0) for key in ("replicas", "updatedReplicas", "availableReplicas")}
    if not settled or wanted < 1 or any(value != wanted for value in counts.values()):
        raise Failed(
            f"{where} runs {reference} but is not healthy ({wanted} wanted, "
            f"{counts['updatedReplicas']} updated, {counts['availableReplicas']} available); "
            "wait for the rollout, or pass --force"
        )
