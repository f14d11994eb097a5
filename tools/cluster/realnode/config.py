"""The configuration files of one real node: containerd, its CNI network and registry hosts, the
kubelet and kube-proxy. Each setting that differs from the upstream default says why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

RUNC = "/usr/sbin/runc"  # Debian's runc package
CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins package
NODE_LABEL = {"type": "real"}
# Keeps every pod that does not tolerate it (all that expect kwok) off the real nodes.
TAINT = {"key": "catalog-platform/real-node", "value": "true", "effect": "NoSchedule"}
TOLERATION = {"key": TAINT["key"], "operator": "Exists", "effect": TAINT["effect"]}


def label_selector(labels: dict[str, str]) -> str:
    """`labels` as a label selector's text (`kubectl -l`, `--node-labels`, `--node-selector`)."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def on_real_node(pod_spec: dict) -> dict:
    """`pod_spec` with what puts it on a real node instead of a kwok one."""
    return {
        **pod_spec,
        "nodeSelector": {**pod_spec.get("nodeSelector", {}), **NODE_LABEL},
        "tolerations": [*pod_spec.get("tolerations", []), TOLERATION],
    }


def placement_values() -> dict:
    """The catalog chart's values that put it on a real node (selector and toleration), with no
    kinds from CRDs this plane does not serve: what an operator sets in environments/<env>/values.yaml
    for this cluster. dev's SQLite claim is bound by the cluster's storage provisioner."""
    return {
        "nodeSelector": NODE_LABEL,
        "tolerations": [TOLERATION],
        "monitoring": {name: {"enabled": False} for name in ("serviceMonitor", "prometheusRule", "dashboard")},
    }


def node_values(image: str) -> dict:
    """The catalog chart's values for this cluster on top of environments/<env>: the image pin
    `repository@digest` (in a registry the nodes pull from) and placement_values()."""
    repository, digest = image.split("@")
    return {"image": {"repository": repository, "digest": digest}, **placement_values()}


@dataclass(frozen=True)
class NodeLayout:
    """Where one node keeps its state and how it is reached: all of it under `directory`."""

    name: str
    directory: Path
    bridge: str
    subnet: str  # 10.123.N.0/24
    gateway: str  # the node IP: the bridge's address
    cgroup: str  # the kubelet's cgroupRoot, without the leading slash
    ports: dict[str, int]  # kubelet, kubelet-healthz

    @property
    def socket(self) -> Path:
        return self.directory / "containerd.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"


def containerd_toml(node: NodeLayout, sandbox_image: str) -> str:
    d = node.directory
    return f"""\
version = 3
root = "{d}/containerd/root"
state = "{d}/containerd/state"
# NRI would open a socket under /var/run/nri; nothing here uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{node.socket}"
[ttrpc]
  address = "{node.socket}.ttrpc"

[plugins.'io.containerd.internal.v1.opt']
  path = "{d}/containerd/opt"  # default /opt/containerd
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = "{d}/s"  # default /run/containerd/s; at most 38 characters

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{sandbox_image}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{d}/certs.d"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # root here lacks CAP_SYS_RESOURCE: without this every sandbox fails with "can't get final
  # child's PID from pipe: EOF" (runc cannot lower the pause container's oom_score_adj).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true  # not /var/run/netns
  cdi_spec_dirs = ["{d}/cdi"]
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{RUNC}"
        Root = "{d}/runc"  # not /run/containerd/runc
        SystemdCgroup = false  # no systemd here: cgroupfs, as the kubelet
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{CNI_BIN}"]
    conf_dir = "{d}/cni/net.d"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  # exec, attach and port-forward streams: loopback only, the kubelet proxies them.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def cni_conflist(node: NodeLayout) -> str:
    """A bridge network on the node's own bridge; no masquerade (pod traffic must not leave the
    machine, see host.guard_egress), host-local addresses kept in the state directory."""
    network = {
        "cniVersion": "1.0.0",
        "name": node.bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": node.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.subnet, "gateway": node.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node.directory / "cni" / "ipam"),
                },
            }
        ],
    }
    return json.dumps(network, indent=2)


def registry_hosts_toml(host: str) -> str:
    """certs.d/<host>/hosts.toml: the local registry speaks plain HTTP."""
    return f'server = "http://{host}"\n[host."http://{host}"]\n  capabilities = ["pull", "resolve"]\n'


def kubelet_config(node: NodeLayout, ca_file: Path, serving: Path) -> str:
    """`serving`: the stem of a certificate and key signed by `ca_file`'s CA for the node's name
    and IP, so the kubelet's clients (the apiserver, metrics-server) can verify whom they reach."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # Served on the bridge IP, the address the apiserver dials (InternalIP), with the
        # apiserver's client certificate checked and every request authorized by the apiserver.
        "address": node.gateway,
        "port": node.ports["kubelet"],
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": node.ports["kubelet-healthz"],
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(serving.with_suffix(".crt")),
        "tlsPrivateKeyFile": str(serving.with_suffix(".key")),
        "containerRuntimeEndpoint": node.endpoint,
        "imageServiceEndpoint": node.endpoint,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": True,
        "cgroupRoot": f"/{node.cgroup}",
        "enforceNodeAllocatable": ["pods"],
        "failSwapOn": False,
        "failCgroupV1": False,  # this host has cgroup v1; the kubelet refuses it by default since 1.35
        "podLogsDir": str(node.directory / "pod-logs"),
        "resolvConf": "",  # no cluster DNS: pods reach Services by ClusterIP
        "podCIDR": node.subnet,
        "maxPods": 30,
        # A laptop-sized disk and memory must not evict the tests' pods.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "nodeStatusUpdateFrequency": "5s",
        "serializeImagePulls": False,
    }
    return yaml.safe_dump(config)


def kubelet_args(node: NodeLayout, kubeconfig: Path, config: Path, binary: Path) -> list[str]:
    taint = f"{TAINT['key']}={TAINT['value']}:{TAINT['effect']}"
    labels = label_selector(NODE_LABEL)
    return [
        str(binary), f"--config={config}", f"--kubeconfig={kubeconfig}",
        f"--root-dir={node.directory / 'kubelet'}", f"--cert-dir={node.directory / 'kubelet-pki'}",
        f"--hostname-override={node.name}", f"--node-ip={node.gateway}",
        f"--node-labels={labels}", f"--register-with-taints={taint}",
    ]  # fmt: skip


def kube_proxy_config(name: str, kubeconfig: Path, cluster_cidrs: list[str], gateways: list[str], ports) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": name,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports['proxy-healthz']}",
        "metricsBindAddress": f"127.0.0.1:{ports['proxy-metrics']}",
        "clusterCIDR": ",".join(cluster_cidrs),
        "nodePortAddresses": [f"{ip}/32" for ip in gateways],
        # SNAT Service traffic, so a pod's reply to another pod on the same bridge goes back
        # through the host's conntrack instead of straight over the bridge.
        "iptables": {"masqueradeAll": True, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        # 0 leaves the host's conntrack sysctls alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }
    return yaml.safe_dump(config)


# -- the NetworkPolicy enforcer ------------------------------------------------------------------
ENFORCER_USER = "catalog-platform:kube-router"


def enforcer_rbac() -> list[dict]:
    """Read access to what kube-router's informers watch (its firewall-only share of upstream's
    ClusterRole: no leases, no Service status)."""
    name = "catalog-platform:kube-router"
    rules = [
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
    ]  # fmt: skip
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ENFORCER_USER}]},
    ]  # fmt: skip


def enforcer_args(node: NodeLayout, kubeconfig: Path, binary: Path) -> list[str]:
    """kube-router with only its NetworkPolicy controller: the bridge plugin routes, kube-proxy
    serves Services. It firewalls the pods whose hostIP is `node`'s IP."""
    return [
        str(binary), f"--kubeconfig={kubeconfig}", f"--hostname-override={node.name}",
        "--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
        "--enable-ipv4=true", "--enable-ipv6=false",  # the bridge is IPv4 only
        "--health-port=0", "--metrics-port=0",  # no fixed host ports: runs may overlap
        # A full resync also repairs what a concurrent run's iptables-restore may have raced with.
        "--iptables-sync-period=30s",
    ]  # fmt: skip
