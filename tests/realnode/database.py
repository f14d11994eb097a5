"""PostgreSQL as a pod of its own on the real node, for the environments that use it: the image
(tests/realnode/postgresql, built once per recipe and base, then reused), its Pod and Service,
and the DATABASE_URL the catalog's Secret carries."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.container.podman import IMAGE_DIR, PODMAN_ENV, podman
from tools.cluster.controlplane import ControlPlane
from tools.cluster.realnode import on_real_node
from tools.cluster.toolbox import REPO_ROOT

from .pods import get, wait_ready, wait_routed

RECIPE = Path(__file__).parent / "postgresql"
IMAGE = "localhost/catalog-test-postgresql"
PORT = 5432
# The chart's NetworkPolicy names its database peers by this label (environments/*/values.yaml).
LABELS = {"app.kubernetes.io/name": "postgresql"}
UID = 999  # fixed in the Containerfile


def build_image() -> Path:
    """An OCI layout of the PostgreSQL image: built when its recipe or base changed, else the
    image and layout of an earlier build (one `podman image exists`)."""
    base = subprocess.run(
        [IMAGE_DIR / "base.sh"], env=PODMAN_ENV, capture_output=True, text=True, check=True, timeout=900
    ).stdout.splitlines()[-1]
    key = hashlib.sha256()
    for file in sorted(RECIPE.iterdir()):
        key.update(file.name.encode() + file.read_bytes())
    key.update(podman("image", "inspect", "--format", "{{.Id}}", base).stdout.encode())
    tag = f"{IMAGE}:{key.hexdigest()[:16]}"
    if podman("image", "exists", tag, check=False).returncode:
        # RUN steps use the host's resolver, as apps/catalog/image/build.sh does.
        subprocess.run(
            ["buildah", "bud", "--quiet", "--layers", "--format", "oci", "--runtime", "runc", "--network", "host",
             "--build-arg", f"BASE_IMAGE={base}", "--tag", tag, "--file", RECIPE / "Containerfile", RECIPE],
            env=PODMAN_ENV, capture_output=True, text=True, check=True, timeout=1800,
        )  # fmt: skip
    layout = REPO_ROOT / "var" / "image" / f"postgresql-{key.hexdigest()[:16]}"
    if not (layout / "index.json").exists():
        podman("push", "--quiet", tag, f"oci:{layout}:latest", timeout=600)
    return layout


@dataclass(frozen=True)
class Database:
    namespace: str
    cluster_ip: str
    user: str
    password: str
    name: str

    @property
    def url(self) -> str:
        """By the Service's ClusterIP: the cluster has no DNS, and kube-proxy routes the IP."""
        return f"postgres://{self.user}:{self.password}@{self.cluster_ip}:{PORT}/{self.name}"


def manifests(namespace: str, image: str, password: str, name: str = "postgresql") -> list[dict]:
    """One PostgreSQL pod (restricted Pod Security, read-only root, data in an emptyDir) and its Service."""
    container = {
        "name": "postgresql",
        "image": image,
        "env": [{"name": "POSTGRES_PASSWORD", "value": password}],
        "ports": [{"name": "postgresql", "containerPort": PORT}],
        "readinessProbe": {
            "exec": {"command": ["pg_isready", "--host=127.0.0.1", f"--port={PORT}", "--username=catalog"]},
            "periodSeconds": 2,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 -- in the pod: its socket directory
        ],
    }
    pod_spec = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        "terminationGracePeriodSeconds": 5,
    }  # fmt: skip
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
            "spec": on_real_node(pod_spec),
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
            "spec": {"selector": LABELS, "ports": [{"name": "postgresql", "port": PORT, "targetPort": "postgresql"}]},
        },
    ]


def start(plane: ControlPlane, namespace: str, image: str) -> Database:
    """PostgreSQL running in `namespace` and Ready (it accepts connections)."""
    password = secrets.token_urlsafe(16)
    pod, service = manifests(namespace, image, password)
    plane.apply([pod, service])
    wait_ready(plane, pod["metadata"]["name"], namespace, timeout=180)
    cluster_ip = get(plane, "service", service["metadata"]["name"], namespace)["spec"]["clusterIP"]
    # Until kube-proxy routes it, the migration Job would spend its retries on the ClusterIP.
    wait_routed(cluster_ip, PORT)
    return Database(namespace, cluster_ip, "catalog", password, "catalog")
