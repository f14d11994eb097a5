"""A real Kubernetes control plane on 127.0.0.1 for the platform tests and for `make cluster-up`:
etcd, kube-apiserver (Node,RBAC authorization, admission plugins on), kube-controller-manager,
kube-scheduler and kwok fake nodes. `python -m tools.cluster.controlplane up|down|status` drives it by
hand; `image <oci-layout>` pushes an image to the registry its real nodes pull from (`make cluster-image`)."""

from __future__ import annotations

import atexit
import json
import shutil
import ssl
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from tools.cluster import components, crds, processes
from tools.cluster.pki import create_pki
from tools.cluster.toolbox import CONTROL_PLANE_BINARIES, REPO_ROOT, TOOLS_DIR, free_ports, missing, run, tool

STATE_PREFIX = "catalog-controlplane-"
DETACHED_RECORD = TOOLS_DIR / "cluster.json"
KUBECONFIG = TOOLS_DIR / "kubeconfig"
# The catalog chart's values for the real nodes of `make cluster-up` (written by `make cluster-image`).
CHART_VALUES = TOOLS_DIR / "catalog-values.yaml"
NODE_COUNT = 2


def _wait(what: str, check, timeout: float, plane: ControlPlane, interval: float = 0.2) -> None:
    """ProcessGroup.wait, with a check that may fail while a component comes up (refused
    connections, kubectl errors, half-written answers) counting as not ready yet."""

    def ready() -> bool:
        try:
            return bool(check())
        except (OSError, RuntimeError, ValueError):
            return False

    plane.group.wait(what, ready, timeout, owner="control plane", interval=interval)


class ControlPlane:
    """One control plane. `start()` returns once it serves, nodes are Ready and the default
    ServiceAccount exists; `stop()` (also run at interpreter exit) leaves no process behind."""

    def __init__(
        self,
        *,
        detached: bool = False,
        install_crds: bool = True,
        address: str = "127.0.0.1",
        default_storage_class: bool = True,
    ) -> None:
        self.detached = detached
        # False where real nodes bring their own provisioner (realnode/storage.py).
        self.default_storage_class = default_storage_class
        self.address = address  # another address than loopback: a real node's bridge IP
        self.install_crds = install_crds
        self.state_dir = Path(tempfile.mkdtemp(prefix=STATE_PREFIX))
        self.group = processes.ProcessGroup(self.state_dir, detached=detached)
        self.kubeconfig = self.state_dir / "admin.kubeconfig"
        self.ports = free_ports(("etcd", "peer", "apiserver", "kcm", "sched", "kwok"))
        self.server = f"https://{address}:{self.ports['apiserver']}"
        self.startup_seconds: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> ControlPlane:
        absent = missing(CONTROL_PLANE_BINARIES)
        if absent:
            raise FileNotFoundError(f"run `make tools` first: .tools/bin lacks {', '.join(absent)}")
        processes.sweep_stale(Path(tempfile.gettempdir()), STATE_PREFIX)
        if not self.detached:
            atexit.register(self.stop)
        began = time.monotonic()
        with processes.stopped_on_failure(self.stop):
            self._start(began)
        self.startup_seconds["total"] = round(time.monotonic() - began, 1)
        return self

    def stop(self) -> list[int]:
        """Stop every component and remove the state; return the pids still alive (none, or a bug)."""
        return self.group.close()

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _mark(self, step: str, began: float) -> None:
        self.startup_seconds[step] = round(time.monotonic() - began, 1)

    def _start(self, began: float) -> None:
        self.pki = create_pki(self.state_dir / "pki", () if self.address == "127.0.0.1" else (self.address,))
        for identity in components.IDENTITIES:
            config = components.kubeconfig(self.server, self.pki, identity)
            path = self.state_dir / f"{identity}.kubeconfig"
            path.write_text(yaml.safe_dump(config))
            path.chmod(0o600)
        layout = components.Layout(self.state_dir, self.pki, self.ports, self.address)
        self.group.start("etcd", components.etcd(layout))
        _wait("etcd", lambda: self._get(f"http://127.0.0.1:{self.ports['etcd']}/health"), 30, self)
        self._mark("etcd", began)
        self.group.start("kube-apiserver", components.kube_apiserver(layout))
        _wait(
            "kube-apiserver /readyz",
            lambda: self._get(self.server + "/readyz", admin=True),
            60,
            self,
        )
        self._mark("apiserver", began)
        self._start_components()
        for name, port in (("kube-controller-manager", "kcm"), ("kube-scheduler", "sched")):
            url = f"https://127.0.0.1:{self.ports[port]}/healthz"
            _wait(name, lambda url=url: self._get(url), 60, self)
        _wait("nodes Ready", self._nodes_ready, 60, self)
        _wait("default ServiceAccount", self._default_service_account, 60, self)
        self._mark("nodes", began)
        if self.install_crds:
            self.apply_crds()
            self._mark("crds", began)

    # -- components ----------------------------------------------------------------------------
    def _start_components(self) -> None:
        layout = components.Layout(self.state_dir, self.pki, self.ports, self.address)
        self.group.start("kube-controller-manager", components.kube_controller_manager(layout))
        self.group.start("kube-scheduler", components.kube_scheduler(layout))
        stages = self.state_dir / "kwok.yaml"
        stages.write_text(crds.kwok_stages())
        self.group.start("kwok", components.kwok(layout, stages))
        storage = [components.default_storage_class()] if self.default_storage_class else []
        self.apply([*components.fake_nodes(NODE_COUNT), *storage])

    def _default_service_account(self) -> bool:
        return self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0

    def _nodes_ready(self) -> bool:
        nodes = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]
        ready = [
            n for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        ]  # fmt: skip
        return len(ready) == NODE_COUNT

    # -- helpers -------------------------------------------------------------------------------
    def _get(self, url: str, *, admin: bool = False) -> bool:
        context = None
        if url.startswith("https"):
            if admin:
                context = ssl.create_default_context(cafile=self.pki.ca_cert)
                context.load_cert_chain(self.pki.path("admin.crt"), self.pki.path("admin.key"))
            else:  # the controllers' self-signed serving certs; /healthz is always allowed
                context = ssl._create_unverified_context()  # noqa: S323
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310
            return response.status == 200

    def kubectl(self, *args: str, check: bool = True, input: str | None = None):
        return run([tool("kubectl"), f"--kubeconfig={self.kubeconfig}", *args], check=check, input=input)

    def apply(self, documents: list[dict]) -> None:
        """Server-side apply (the CRDs are too large for the client-side annotation)."""
        manifest = "\n---\n".join(json.dumps(document) for document in documents)
        self.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=catalog-tests",
            "-f",
            "-",
            input=manifest,
        )

    def apply_files(self, files: list[Path]) -> list[str]:
        """Server-side apply of manifest files, parsed by kubectl (PyYAML needs seconds per MB);
        the applied objects' `kind.group/name`s."""
        return self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=catalog-tests", "--output=name",
            *(f"--filename={file}" for file in files),
        ).stdout.split()  # fmt: skip

    def apply_crds(self) -> None:
        self.apply_files(crds.crd_files())
        # Retried: `kubectl wait` fails at once on a CRD whose status has no conditions yet.
        _wait("CRDs Established", self._crds_established, 120, self, interval=1.0)
        # The aggregated OpenAPI document lags the Established condition by a moment.
        _wait("CRDs in /openapi/v2", self._openapi_has_crds, 60, self, interval=1.0)

    def _crds_established(self) -> bool:
        waited = self.kubectl("wait", "--for=condition=Established", "--timeout=20s", "crd", "--all", check=False)
        return waited.returncode == 0

    def _openapi_has_crds(self) -> bool:
        """Every served version of every CRD has a definition in /openapi/v2 (kubeconform's source)."""
        crd_list = json.loads(self.kubectl("get", "crd", "-o", "json").stdout)["items"]
        wanted = {
            (crd["spec"]["group"], version["name"], crd["spec"]["names"]["kind"])
            for crd in crd_list
            for version in crd["spec"]["versions"]
            if version["served"]
        }
        swagger = json.loads(self.kubectl("get", "--raw", "/openapi/v2").stdout)
        published = {
            (gvk["group"], gvk["version"], gvk["kind"])
            for definition in swagger["definitions"].values()
            for gvk in definition.get("x-kubernetes-group-version-kind", [])
        }
        return wanted <= published


def claim_shared_kubeconfig(plane: ControlPlane) -> bool:
    """Copy `plane`'s kubeconfig to .tools/kubeconfig, unless a `make cluster-up` plane owns it."""
    record = json.loads(DETACHED_RECORD.read_text()) if DETACHED_RECORD.exists() else None
    if _detached_running(record):
        return False
    TOOLS_DIR.mkdir(exist_ok=True)
    shutil.copy(plane.kubeconfig, KUBECONFIG)
    return True


def _detached_running(record: dict | None) -> bool:
    pids = processes.read_pidfile(Path(record["state_dir"])) if record else None
    return bool(pids) and all(processes.alive(child["pid"]) for child in pids["children"])


def _start_detached(real_nodes: int) -> tuple[ControlPlane, dict]:
    """The plane of `make cluster-up`; with real nodes (root only) it serves on their bridge, and
    a registry on that bridge holds the images they run. Returns the plane and what the record
    keeps of the nodes."""
    if not real_nodes:
        return ControlPlane(detached=True).start(), {"real_nodes": None}
    from tools.cluster import realnode

    unmet = realnode.unmet_prerequisites()
    if unmet:
        raise SystemExit(f"real nodes need {'; '.join(unmet)} (REAL_NODES=0: kwok nodes only)")
    plane, nodes = realnode.start_cluster(real_nodes, detached=True, install_crds=True, registry=True)
    names = ", ".join(node.name for node in nodes.nodes)
    taint = realnode.TAINT
    print(f"real nodes {names} Ready; kwok keeps every pod that does not ask for them with")
    print(f"  nodeSelector type=real and a toleration of {taint['key']}={taint['value']}:{taint['effect']}")
    print("  storage: the default StorageClass local-path makes each claim a directory on its pod's node")
    print("  reach a Service of theirs: kubectl port-forward -n <namespace> svc/<name> 8080:<port>")
    print(f"registry {nodes.registry}: the nodes pull from it; make cluster-image pushes make image's catalog there")
    return plane, {"real_nodes": str(nodes.state_dir), "registry": nodes.registry}


def _push_image(record: dict | None, layout: Path) -> int:
    """`make cluster-image`: `layout` (make image's catalog) pushed by digest to the registry of
    the running `make cluster-up`, and the chart values that run it on its real node."""
    if record is None or not record.get("registry") or not _detached_running(record):
        print("cluster-image needs a running `make cluster-up` with real nodes (its registry)", file=sys.stderr)
        return 1
    from tools.cluster import realnode, registry

    reference = registry.push_by_digest(layout, f"{record['registry']}/catalog")
    CHART_VALUES.write_text(yaml.safe_dump(realnode.node_values(reference)))
    values = CHART_VALUES.relative_to(REPO_ROOT)  # make runs in the repository's root
    print(f"catalog image: {reference}")
    print(f"  chart values (this image, the real node's placement): {values}")
    print("  helm install catalog apps/catalog/chart -n catalog-dev --create-namespace \\")
    print(f"    -f environments/dev/values.yaml -f {values} --wait")
    return 0


def _cli(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    record = json.loads(DETACHED_RECORD.read_text()) if DETACHED_RECORD.exists() else None
    if command == "up":
        if _detached_running(record):
            print(f"control plane already up: {record['server']} (KUBECONFIG={KUBECONFIG})")
            return 0
        real_nodes = next((int(a.split("=", 1)[1]) for a in argv[1:] if a.startswith("--real-nodes=")), 1)
        plane, nodes = _start_detached(real_nodes)
        TOOLS_DIR.mkdir(exist_ok=True)
        shutil.copy(plane.kubeconfig, KUBECONFIG)
        DETACHED_RECORD.write_text(json.dumps({"state_dir": str(plane.state_dir), "server": plane.server, **nodes}))
        print(f"control plane up in {plane.startup_seconds['total']}s at {plane.server}")
        print(f"  export KUBECONFIG={KUBECONFIG}    # stop with: make cluster-down")
        return 0
    if command == "down":
        if record and record.get("real_nodes"):
            from tools.cluster import realnode

            realnode.teardown(Path(record["real_nodes"]))
        if record:
            state_dir = Path(record["state_dir"])
            pids = processes.read_pidfile(state_dir)
            if pids:
                processes.stop_children([processes.Child(**c) for c in pids["children"]])
            shutil.rmtree(state_dir, ignore_errors=True)
        DETACHED_RECORD.unlink(missing_ok=True)
        KUBECONFIG.unlink(missing_ok=True)
        CHART_VALUES.unlink(missing_ok=True)
        print("control plane down")
        return 0
    if command == "image" and len(argv) == 2:
        return _push_image(record, Path(argv[1]))
    if command == "status":
        up = _detached_running(record)
        print(f"control plane {'up at ' + record['server'] if up else 'down'}")
        return 0 if up else 3
    usage = "up [--real-nodes=N]|down|status|image <oci-layout>"
    print(f"usage: python -m tools.cluster.controlplane {usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
