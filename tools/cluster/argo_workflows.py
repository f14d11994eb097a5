"""Argo Workflows on a real-node cluster: the workflow-controller and `argo server` (tools/argo) as
host processes next to the control plane, as upstream's own Procfile runs them, and their pods
(init and wait from the executor image packed here from tools/argoexec) on the real node.

What the argo_workflows role configures is read from the role, so the two cannot drift: the
namespace (and its Pod Security level from the namespaces role), template referencing, the
executor's resources; the executor Role and the workflow ServiceAccounts are argo-workflows/rbac,
which the role applies as they are. Only what a host process needs differs: the executor image is ours, by digest; every
Workflow is placed on the real node through the controller's workflowDefaults, so the platform's
templates run unchanged; metrics and telemetry are off; a 1 s requeue (DEFAULT_REQUEUE_TIME)
instead of 10 s between a step and the next.

Both binaries listen on all interfaces (the controller's /healthz on :6060 is hard-coded, and
`argo server` has no address flag): a chain of the real node's run drops what reaches their ports
from anywhere but loopback. Everything lives in the real node's state directory, so its teardown
(and the next run's sweep, when this one was killed) also removes what `stop()` did not."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tools.cluster import processes
from tools.cluster.controlplane import ControlPlane
from tools.cluster.crds import module_dir
from tools.cluster.realnode import NODE_LABEL, TOLERATION, RealNodes, pause
from tools.cluster.realnode import host as realnode_host
from tools.cluster.toolbox import REPO_ROOT, free_port, tool

ROLE = REPO_ROOT / "roles" / "argo_workflows"
RBAC = REPO_ROOT / "argo-workflows" / "rbac"
NAMESPACES_ROLE = REPO_ROOT / "roles" / "namespaces"
MODULE = "github.com/argoproj/argo-workflows/v3"
CONTROLLER_HEALTH_PORT = 6060  # cmd/workflow-controller/main.go: http.ListenAndServe(":6060", nil)
EXECUTOR_REPOSITORY = "localhost/catalog-platform/argoexec"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")  # Debian's ca-certificates: for artifact stores over TLS
ENDED = ("Succeeded", "Failed", "Error")  # a Workflow's final phases


def role_defaults(role: Path) -> dict[str, Any]:
    return yaml.safe_load((role / "defaults" / "main.yml").read_text())


def pod_security(namespace: str) -> str:
    """The Pod Security level the namespaces role gives `namespace` (its namespaces_list)."""
    for entry in role_defaults(NAMESPACES_ROLE)["namespaces_list"]:
        if entry["name"] == namespace:
            return str(entry["pod_security"])
    raise RuntimeError(f"roles/namespaces gives {namespace} no pod_security")


def workflow_rbac() -> list[dict]:
    """The pipelines' RBAC as the role applies it: every document in argo-workflows/rbac (the
    executor Role, one ServiceAccount per pipeline bound to it, the event sender)."""
    return [
        document
        for path in sorted(RBAC.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def executor_layout(directory: Path) -> Path:
    """The executor image (argoexec from scratch, a CA bundle, /tmp 1777) as an OCI layout in
    `directory`, packed as the node's own images are (realnode/pause.py): no image builder, and
    the same binary and bundle give the same digest."""
    binary = tool("argoexec")
    files = {
        "bin/argoexec": (binary.read_bytes(), 0o755),
        f"etc/ssl/certs/{CA_BUNDLE.name}": (CA_BUNDLE.read_bytes(), 0o644),
    }
    config = {"Entrypoint": ["argoexec"], "Env": ["PATH=/bin"]}
    pause.write_layout(directory, pause.image_name(binary, EXECUTOR_REPOSITORY), files, config, {"tmp": 0o1777})
    return directory


class ArgoWorkflows:
    """The controller and `argo server` for `nodes`' plane; Workflow pods pull `executor_image`
    (`executor_layout` pushed to a registry the node trusts, by digest)."""

    def __init__(self, nodes: RealNodes, executor_image: str) -> None:
        assert nodes.plane is not None
        self.nodes = nodes
        self.plane: ControlPlane = nodes.plane
        self.executor_image = executor_image
        self.settings = role_defaults(ROLE)
        self.namespace: str = self.settings["argo_workflows_namespace"]
        self.state_dir = nodes.state_dir / "argo-workflows"
        self.group = processes.ProcessGroup(self.state_dir, detached=False)
        self.chain = f"{nodes.chain}-AW"  # its prefix is the run's: the run's teardown removes it too
        self.server_port = free_port()
        self.server = f"http://127.0.0.1:{self.server_port}"
        # Named in both command lines: the real node's teardown finds them by its state directory.
        self.kubeconfig = self.state_dir / "admin.kubeconfig"
        self.startup_seconds: dict[str, float] = {}

    @property
    def service_accounts(self) -> list[str]:
        """The workflow ServiceAccounts of argo-workflows/rbac, one per pipeline (ci first)."""
        return [
            document["metadata"]["name"]
            for document in workflow_rbac()
            if document["kind"] == "ServiceAccount"
            and document["metadata"]["labels"].get("app.kubernetes.io/component") == "workflow"
        ]

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ArgoWorkflows:
        began = time.monotonic()
        self.state_dir.mkdir()
        try:
            self.plane.apply([self._namespace(), self._configmap()])
            # The documents of the pipelines' own namespace (promote's reads live in the environments').
            self.apply([d for d in workflow_rbac() if "namespace" not in d["metadata"]])
            self._guard_ports()
            shutil.copy(self.plane.kubeconfig, self.kubeconfig)
            self.group.start("workflow-controller", self._controller_args(self.kubeconfig), self._env())
            self.group.start("argo-server", self._server_args(self.kubeconfig), self._env())
            self.group.wait(
                "workflow-controller",
                lambda: "Starting Workflow Controller" in self.log("workflow-controller"),
                60,
                owner="Argo Workflows",
            )
            self.group.wait("argo server", self._server_answers, 60, owner="Argo Workflows")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds["total"] = round(time.monotonic() - began, 1)
        return self

    def stop(self) -> None:
        """Delete the namespace (the kubelet stops its pods), stop both processes, drop the chain."""
        if self.plane.kubectl("get", "namespace", self.namespace, check=False).returncode == 0:
            self.plane.kubectl("delete", "namespace", self.namespace, "--timeout=120s", check=False)
        self.group.stop()
        realnode_host.remove_chains(self.chain)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    # -- the API a test uses --------------------------------------------------------------------
    def apply(self, documents: list[dict]) -> None:
        """Apply `documents` in the Workflows' namespace."""
        self.plane.apply([{**d, "metadata": {**d["metadata"], "namespace": self.namespace}} for d in documents])

    def configure(self, **settings: Any) -> None:
        """Add `settings` (e.g. artifactRepository) to workflow-controller-configmap, as an operator
        edits it; the controller watches the ConfigMap and takes them for the next Workflow."""
        configmap = self._configmap()
        configmap["data"].update({key: yaml.safe_dump(value) for key, value in settings.items()})
        self.plane.apply([configmap])

    def token(self, service_account: str) -> str:
        """A short-lived token of `service_account` (the TokenRequest API, as `argo` docs it)."""
        return self.plane.kubectl("create", "token", service_account, "-n", self.namespace).stdout.strip()

    def send_event(self, discriminator: str, payload: dict, token: str | None) -> httpx.Response:
        """POST /api/v1/events/<namespace>/<discriminator>, as a webhook would (`None`: no token)."""
        return httpx.post(
            f"{self.server}/api/v1/events/{self.namespace}/{discriminator}",
            json=payload,
            headers={"Authorization": f"Bearer {token}"} if token is not None else {},
            timeout=30,
        )

    def workflow(self, name: str) -> dict:
        return json.loads(self.plane.kubectl("get", "workflow", name, "-n", self.namespace, "-o", "json").stdout)

    def wait_done(self, name: str, timeout: float = 300) -> dict:
        """The Workflow once it has ended (Succeeded, Failed or Error)."""
        deadline = time.monotonic() + timeout
        while True:
            workflow = self.workflow(name)
            if workflow.get("status", {}).get("phase") in ENDED:
                return workflow
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Workflow {name} not ended after {timeout:.0f}s: {json.dumps(workflow.get('status'))}"
                )
            time.sleep(0.5)

    def pods(self, workflow: str) -> list[dict]:
        """The pods the controller made for `workflow`."""
        selector = f"workflows.argoproj.io/workflow={workflow}"
        result = self.plane.kubectl("get", "pods", "-n", self.namespace, "-l", selector, "-o", "json")
        return json.loads(result.stdout)["items"]

    # -- pieces ---------------------------------------------------------------------------------
    def _namespace(self) -> dict:
        level = pod_security(self.namespace)
        labels = {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")}
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace, "labels": labels}}

    def _configmap(self) -> dict:
        """The role's settings (docs/workflow-controller-configmap.yaml: YAML strings under keys),
        plus what differs on a host process (see the module's docstring)."""
        settings = self.settings
        data = {
            "workflowRestrictions": {"templateReferencing": settings["argo_workflows_template_referencing"]},
            "executor": {
                "resources": settings["argo_workflows_resources"]["executor"],
                # The executor calls the apiserver at its bridge address, as metrics-server does:
                # clusters side by side on one host share kube-proxy's chain of `kubernetes`.
                "env": [
                    {"name": "KUBERNETES_SERVICE_HOST", "value": self.plane.address},
                    {"name": "KUBERNETES_SERVICE_PORT", "value": str(self.plane.ports["apiserver"])},
                ],
            },
            "workflowDefaults": {"spec": {"nodeSelector": NODE_LABEL, "tolerations": [TOLERATION]}},
            "metricsConfig": {"enabled": False},
            "telemetryConfig": {"enabled": False},
        }
        if settings["argo_workflows_artifact_repository"]:
            data["artifactRepository"] = settings["argo_workflows_artifact_repository"]
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "workflow-controller-configmap", "namespace": self.namespace},
            "data": {key: yaml.safe_dump(value) for key, value in data.items()},
        }

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.state_dir),
            # Besides --kubeconfig: `argo server` builds each caller's client from the default
            # loading rules (util/kubeconfig.DefaultRestConfig), which read only this.
            "KUBECONFIG": str(self.kubeconfig),
            # One controller: no lease to wait for at start.
            "LEADER_ELECTION_DISABLE": "true",
            # Seconds between a pod's end and the next step's pod: 10 s upstream, 1 s here.
            "DEFAULT_REQUEUE_TIME": "1s",
        }

    def _controller_args(self, kubeconfig: Path) -> list[str]:
        return [
            str(tool("workflow-controller")),
            f"--kubeconfig={kubeconfig}",
            f"--namespace={self.namespace}",
            "--namespaced",
            f"--executor-image={self.executor_image}",
            "--executor-image-pull-policy=IfNotPresent",
        ]

    def _server_args(self, kubeconfig: Path) -> list[str]:
        # `client`: every API call, an event too, acts with the caller's bearer token. Plain HTTP
        # on loopback: TLS would only need a certificate no client here checks.
        return [
            str(tool("argo")),
            "server",
            f"--kubeconfig={kubeconfig}",
            f"--namespace={self.namespace}",
            "--namespaced",
            "--auth-mode=client",
            "--secure=false",
            f"--port={self.server_port}",
            "--browser=false",
        ]

    def _guard_ports(self) -> None:
        """Drop what reaches the two listeners from anywhere but loopback (v4 and v6)."""
        ports = f"{CONTROLLER_HEALTH_PORT},{self.server_port}"
        for binary in ("iptables", "ip6tables"):
            realnode_host.sh(binary, "-N", self.chain)
            realnode_host.sh(
                binary,
                "-A",
                self.chain,
                "!",
                "-i",
                "lo",
                "-p",
                "tcp",
                "-m",
                "multiport",
                "--dports",
                ports,
                "-j",
                "DROP",
            )
            realnode_host.sh(binary, "-I", "INPUT", "1", "-j", self.chain)

    def _server_answers(self) -> bool:
        try:
            return httpx.get(f"{self.server}/api/v1/version", timeout=2).status_code in (200, 401)
        except httpx.TransportError:
            return False

    def log(self, name: str) -> str:
        """What process `name` (workflow-controller, argo-server) has logged so far."""
        path = self.state_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def module_root() -> Path:
    """The pinned argo-workflows module (tools/argo's go.mod) in the Go module cache."""
    return module_dir(REPO_ROOT / "tools" / "argo", MODULE)


def upstream_documents(relative: str) -> list[dict]:
    """A manifest of the pinned release (e.g. its quick-start Roles)."""
    return [d for d in yaml.safe_load_all((module_root() / relative).read_text()) if d]
