"""Real nodes for the test control plane: per node a bridge, containerd and a kubelet, plus one
kube-proxy for the host. Pods really run (runc), pull images by digest, and have their probes run.

Order matters: `prepare()` makes the bridges before the control plane starts, because the
apiserver serves on the first bridge's IP (the `kubernetes` Service then has an endpoint pods can
reach); `join(plane)` starts the node daemons. Everything lives in one state directory
(/tmp/catalog-realnode-<id>), recorded in node.json before the host is touched, so `teardown`
(also at interpreter exit, and the next run's sweep when this one was killed; see cleanup.py)
can undo it all."""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from tools.cluster import components, processes
from tools.cluster.controlplane import ControlPlane
from tools.cluster.pki import Pki, issue_client_certificate, issue_serving_certificate
from tools.cluster.registry import LocalRegistry
from tools.cluster.toolbox import TOOLS_BIN, free_ports, missing, run, tool

from . import config, host, metrics_server, pause, storage
from .cleanup import RECORD, STATE_PREFIX, live_runs, read_record, sweep_stale, teardown

BINARIES = (
    "kubelet",
    "kube-proxy",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "pause",
    "local-path-provisioner",
    "kube-router",
    "metrics-server",
    "kustomize",
)
HOST_PREREQUISITES = (config.RUNC, f"{config.CNI_BIN}/bridge", f"{config.CNI_BIN}/host-local", str(storage.BUSYBOX))


def unmet_prerequisites() -> list[str]:
    """Why real nodes cannot run here (empty when they can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("root (bridges, cgroups, iptables, mounts)")
    absent = missing(BINARIES)
    if absent:
        reasons.append(f"`make tools` (.tools/bin lacks {', '.join(absent)})")
    packages = "runc containernetworking-plugins busybox-static"
    reasons += [f"{path} (apt-get install {packages})" for path in HOST_PREREQUISITES if not os.access(path, os.X_OK)]
    reasons += [binary for binary in ("iptables", "ip6tables", "ip") if shutil.which(binary) is None]
    if shutil.which("ipset") is None:
        reasons.append("ipset (apt-get install ipset; the NetworkPolicy enforcer keeps policy peers in ipsets)")
    return reasons


class RealNodes:
    """`count` real nodes named real-0, real-1, ... on this host, for one control plane."""

    def __init__(self, count: int = 1, *, detached: bool = False) -> None:
        sweep_stale()
        self.detached = detached
        self.id = secrets.token_hex(3)
        self.state_dir = Path(tempfile.gettempdir()) / f"{STATE_PREFIX}{self.id}"
        self.state_dir.mkdir(mode=0o755)
        self.group = processes.ProcessGroup(self.state_dir, detached=detached)
        self.chain = f"CATALOG-RN-{self.id}"
        self.nodes: list[config.NodeLayout] = []
        self.count = count
        # kube-proxy's and every kubelet's, picked at once so no two are the same.
        kubelets = [f"{port}-{index}" for index in range(count) for port in ("kubelet", "kubelet-healthz")]
        self.ports = free_ports(["proxy-healthz", "proxy-metrics", *kubelets])
        self.plane: ControlPlane | None = None
        self.registry: str | None = None  # host:port, once start_registry() ran
        self.startup_seconds: dict[str, float] = {}
        # Written before anything else, so a concurrent sweep never takes this run for a dead one.
        self._write_record({"owner": os.getpid(), "detached": detached})
        if not detached:
            atexit.register(self.stop)

    # -- lifecycle ------------------------------------------------------------------------------
    def prepare(self) -> str:
        """Bridges, cgroups and the egress guard; returns the address the apiserver must serve on."""
        others = live_runs(exclude=self.state_dir)
        # Another live run has changed the host already: what it recorded is the host as it was.
        before = (read_record(others[0]) or {}).get("before") if others else None
        record = {
            "owner": os.getpid(),
            "detached": self.detached,
            "before": before or host.snapshot(),
            "chain": self.chain,
            "bridges": [f"crn{self.id}n{i}" for i in range(self.count)],
            "cgroups": [f"{STATE_PREFIX}{self.id}-{i}" for i in range(self.count)],
        }
        self._write_record(record)
        for index, (bridge, cgroup) in enumerate(zip(record["bridges"], record["cgroups"], strict=True)):
            subnet = host.free_subnet()  # the bridges made so far count as used
            gateway = str(next(subnet.hosts()))
            host.create_bridge(bridge, gateway, subnet.prefixlen)
            host.create_cgroup(cgroup)
            node = config.NodeLayout(
                name=f"real-{index}",
                directory=self.state_dir / f"n{index}",
                bridge=bridge,
                subnet=str(subnet),
                gateway=gateway,
                cgroup=cgroup,
                ports={port: self.ports[f"{port}-{index}"] for port in ("kubelet", "kubelet-healthz")},
            )
            node.directory.mkdir()
            self.nodes.append(node)
        host.guard_egress(self.chain, [node.subnet for node in self.nodes])
        return self.nodes[0].gateway

    def join(self, plane: ControlPlane) -> RealNodes:
        """Start containerd and a kubelet per node and one kube-proxy; return once all are Ready."""
        self.plane = plane
        began = time.monotonic()
        sandbox_image = pause.image_name(tool("pause"))
        env = {**os.environ, "PATH": f"{TOOLS_BIN}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}
        pki = Pki(self.state_dir / "pki")
        pki.directory.mkdir()
        shutil.copy(plane.pki.ca_cert, pki.ca_cert)
        for node in self.nodes:
            self._start_containerd(node, sandbox_image, env)
        archive, helper_archive = self.state_dir / "pause.tar", self.state_dir / "volume-helper.tar"
        pause.write_archive(tool("pause"), archive)
        helper_image = storage.write_helper_archive(helper_archive)
        for node in self.nodes:
            self._wait(f"{node.name}: containerd socket", node.socket.exists, 30)
            self.ctr(node, "images", "import", str(archive))
            self.ctr(node, "images", "import", str(helper_archive))
            identity = f"node-{node.name}"
            issue_client_certificate(plane.pki, pki.directory, identity, f"system:node:{node.name}", ["system:nodes"])
            kubeconfig = self._kubeconfig(plane, pki, identity)
            kubelet_config = node.directory / "kubelet.yaml"
            issue_serving_certificate(plane.pki, pki.directory, f"serving-{node.name}", node.name, [node.gateway])
            kubelet_config.write_text(config.kubelet_config(node, pki.ca_cert, pki.path(f"serving-{node.name}")))
            args = config.kubelet_args(node, kubeconfig, kubelet_config, tool("kubelet"))
            self.group.start(f"kubelet-{node.name}", args, env)
        self._start_kube_proxy(plane, pki, env)
        self._start_storage(plane, pki, helper_image, env)
        for node in self.nodes:
            self._wait(f"node {node.name} Ready", lambda node=node: self._ready(node.name), 90)
        self.startup_seconds["nodes"] = round(time.monotonic() - began, 1)
        return self

    def enforce_network_policies(self) -> None:
        """Start kube-router's NetworkPolicy controller for the first node (the CNI bridge plugin
        enforces nothing) and return once its chains are in place; `stop_enforcing` undoes it. One
        enforcer per host: two would rewrite the same chains."""
        assert self.plane is not None
        if any((read_record(other) or {}).get("enforcer") for other in live_runs(exclude=self.state_dir)):
            raise RuntimeError("another real-node run enforces NetworkPolicies on this host")
        # kube-router matches bridged pod-to-pod packets in iptables (physdev); without this the
        # bridge forwards them past every rule.
        if Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() != "1":
            raise RuntimeError("net.bridge.bridge-nf-call-iptables is not 1: bridged pod traffic skips iptables")
        self._write_record({**(read_record(self.state_dir) or {}), "enforcer": True})
        self.plane.apply(config.enforcer_rbac())
        pki = Pki(self.state_dir / "pki")
        issue_client_certificate(self.plane.pki, pki.directory, "kube-router", config.ENFORCER_USER, [])
        kubeconfig = self._kubeconfig(self.plane, pki, "kube-router")
        self.group.start("kube-router", config.enforcer_args(self.nodes[0], kubeconfig, tool("kube-router")))
        self._wait("kube-router's chains", lambda: bool(host.chains_named("KUBE-ROUTER-FORWARD")), 60)

    def stop_enforcing(self) -> None:
        """Stop kube-router and remove what it wrote (it leaves its chains and ipsets behind)."""
        self.group.stop_one("kube-router")
        host.remove_enforcer_state()
        self._write_record({**(read_record(self.state_dir) or {}), "enforcer": False})

    def stop(self) -> None:
        """Stop the daemons, kill the pods, and undo every change to the host."""
        self.group.stop()
        teardown(self.state_dir)

    # -- pieces ---------------------------------------------------------------------------------
    def _write_record(self, record: dict) -> None:
        tmp = self.state_dir / (RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(self.state_dir / RECORD)

    def _start_containerd(self, node: config.NodeLayout, sandbox_image: str, env: dict[str, str]) -> None:
        (node.directory / "cni" / "net.d").mkdir(parents=True)
        (node.directory / "cni" / "net.d" / "10-bridge.conflist").write_text(config.cni_conflist(node))
        (node.directory / "certs.d").mkdir()
        toml = node.directory / "containerd.toml"
        toml.write_text(config.containerd_toml(node, sandbox_image))
        self.group.start(f"containerd-{node.name}", [str(tool("containerd")), f"--config={toml}"], env)

    def _start_kube_proxy(self, plane: ControlPlane, pki: Pki, env: dict[str, str]) -> None:
        """One kube-proxy serves every node: they share the host's network namespace and iptables."""
        issue_client_certificate(plane.pki, pki.directory, "kube-proxy", "system:kube-proxy", [])
        proxy_config = self.state_dir / "kube-proxy.yaml"
        proxy_config.write_text(
            config.kube_proxy_config(
                self.nodes[0].name,
                self._kubeconfig(plane, pki, "kube-proxy"),
                [node.subnet for node in self.nodes],
                [node.gateway for node in self.nodes],
                self.ports,
            )
        )
        self.group.start("kube-proxy", [str(tool("kube-proxy")), f"--config={proxy_config}"], env)

    def _start_storage(self, plane: ControlPlane, pki: Pki, helper_image: str, env: dict[str, str]) -> None:
        """The default StorageClass and its provisioner; each node's volumes under its directory."""
        volume_dirs = {node.name: node.directory / "volumes" for node in self.nodes}
        plane.apply(storage.documents(volume_dirs, self.state_dir / "kwok-volumes", helper_image))
        issue_client_certificate(plane.pki, pki.directory, "local-path-provisioner", storage.USER, [])
        kubeconfig = self._kubeconfig(plane, pki, "local-path-provisioner")
        self.group.start("local-path-provisioner", storage.args(kubeconfig), env)

    def _kubeconfig(self, plane: ControlPlane, pki: Pki, identity: str) -> Path:
        path = self.state_dir / f"{identity}.kubeconfig"
        path.write_text(yaml.safe_dump(components.kubeconfig(plane.server, pki, identity)))
        path.chmod(0o600)
        return path

    def trust_registry(self, registry_host: str) -> None:
        """Let every node pull from a plain-HTTP registry at `registry_host` (host:port)."""
        for node in self.nodes:
            directory = node.directory / "certs.d" / registry_host
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "hosts.toml").write_text(config.registry_hosts_toml(registry_host))

    def start_registry(self) -> str:
        """A registry on the first node's bridge address that every node trusts, for images built
        here (`make cluster-image`). It runs in the nodes' process group, so it stops with them, and
        keeps its data in the state directory, so teardown removes it; returns its host:port."""
        registry = LocalRegistry(self.state_dir / "registry", self.nodes[0].gateway, self.group)
        registry.root.mkdir()
        registry.start()
        self.trust_registry(registry.host)
        self.registry = registry.host
        return registry.host

    def ctr(self, node: config.NodeLayout, *args: str):
        return run([tool("ctr"), f"--address={node.socket}", "--namespace=k8s.io", *args])

    def _ready(self, name: str) -> bool:
        assert self.plane is not None
        result = self.plane.kubectl("get", "node", name, "-o", "json", check=False)
        if result.returncode:
            return False
        conditions = json.loads(result.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _wait(self, what: str, check, timeout: float) -> None:
        self.group.wait(what, check, timeout, owner="real node")


def start_cluster(count: int = 1, *, detached: bool = False, install_crds: bool = False, registry: bool = False):
    """A control plane serving on the first node's bridge IP, with `count` real nodes joined and
    metrics-server deployed on them (not waited for: see metrics_server.install); with `registry`,
    also the nodes' own registry (RealNodes.start_registry)."""
    nodes = RealNodes(count, detached=detached)
    plane = None
    try:
        address = nodes.prepare()
        plane = ControlPlane(
            detached=detached, install_crds=install_crds, address=address, default_storage_class=False
        ).start()
        nodes.join(plane)
        metrics_server.install(plane, nodes)
        if registry:
            nodes.start_registry()
    except BaseException:
        nodes.stop()
        if plane is not None:
            plane.stop()
        raise
    return plane, nodes
