"""Storage for the real cluster, as Docker Desktop's hostpath gives it: local-path-provisioner
(pinned in tools/local-path-provisioner) answers every claim of the default StorageClass `local-path` with a
directory on the node the claim's pod was scheduled to (WaitForFirstConsumer).

It runs as a host process, like kube-proxy: it is one more controller of the harness, needs no
image of its own, starts before any pod could, and goes with the run's other processes at teardown.
What it creates and removes on a node, it does with a helper pod there; that pod's image is
Debian's static busybox (the program upstream's helper image ships), packed here into an image
the node imports, since no registry can be pulled from. Upstream's manifest (namespace,
ServiceAccount, RBAC, StorageClass, the helper's scripts) is applied as published, but for its
Deployment and four settings: the class is the default, volumes live in the run's state
directory, the helper image is ours, the bindings name the host process's user too."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tools.cluster.crds import VOLUME_HELPER_NAMESPACE, module_dir
from tools.cluster.toolbox import REPO_ROOT, tool

from .pause import image_name, write_image

MODULE = "github.com/rancher/local-path-provisioner"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static package: no shared libraries to pack
HELPER_REPOSITORY = "localhost/catalog-platform/busybox"
# What upstream's setup and teardown scripts call.
HELPER_COMMANDS = ("sh", "mkdir", "rm")
# The path local-path-provisioner gives every node its config does not name (the kwok ones: their
# helper pods only pretend to run, so nothing is ever made there).
OTHER_NODES = "DEFAULT_PATH_FOR_NON_LISTED_NODES"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
# The user of the provisioner's client certificate, added to upstream's two bindings so it gets
# exactly what the in-cluster Deployment's ServiceAccount gets (whose user name is too long for a
# certificate's common name).
USER = "catalog-platform:local-path-provisioner"


def upstream_documents() -> list[dict]:
    """deploy/local-path-storage.yaml of the pinned release, from the Go module cache."""
    root = module_dir(REPO_ROOT / "tools" / "local-path-provisioner", MODULE)
    return [d for d in yaml.safe_load_all((root / "deploy" / "local-path-storage.yaml").read_text()) if d]


def helper_image_name() -> str:
    return image_name(BUSYBOX, HELPER_REPOSITORY)


def write_helper_archive(archive: Path) -> str:
    """The helper pod's image (busybox and the commands it runs as links) as an OCI archive."""
    name = helper_image_name()
    links = {f"bin/{command}": "busybox" for command in HELPER_COMMANDS}
    write_image(archive, name, {"bin/busybox": (BUSYBOX.read_bytes(), 0o755)}, {"Env": ["PATH=/bin"]}, links)
    return name


def documents(volume_dirs: dict[str, Path], other_nodes: Path, helper_image: str) -> list[dict]:
    """Upstream's manifest as this cluster runs it; `volume_dirs` maps each real node to the
    directory its volumes go to, `other_nodes` is the (never made) path of every other node."""
    kept = []
    for document in upstream_documents():
        kind = document["kind"]
        if kind == "Deployment":  # the provisioner runs on the host: see `args`
            continue
        namespace = document["metadata"].get("namespace", document["metadata"]["name"] if kind == "Namespace" else None)
        if namespace not in (None, VOLUME_HELPER_NAMESPACE):
            raise RuntimeError(f"{MODULE} moved its {kind} to {namespace}; kwok's helper stage names the old one")
        if kind in ("RoleBinding", "ClusterRoleBinding"):
            document["subjects"].append({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": USER})
        if kind == "StorageClass":
            document["metadata"].setdefault("annotations", {})[DEFAULT_CLASS] = "true"
        if kind == "ConfigMap":
            node_paths = [{"node": node, "paths": [str(path)]} for node, path in volume_dirs.items()]
            node_paths.append({"node": OTHER_NODES, "paths": [str(other_nodes)]})
            data = document["data"]
            data["config.json"] = json.dumps({"nodePathMap": node_paths}, indent=2)
            helper = yaml.safe_load(data["helperPod.yaml"])
            helper["spec"]["containers"][0]["image"] = helper_image
            data["helperPod.yaml"] = yaml.safe_dump(helper)
        kept.append(document)
    return kept


def args(kubeconfig: Path) -> list[str]:
    """The provisioner reads its config and helper pod from upstream's ConfigMap."""
    return [str(tool("local-path-provisioner")), "--debug", "start", f"--kubeconfig={kubeconfig}"]
