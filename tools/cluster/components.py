"""What each control-plane component is started with, and the objects the harness creates."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from tools.cluster.pki import FRONT_PROXY_CLIENT, SERVICE_IP, Pki
from tools.cluster.toolbox import tool

ADMISSION_PLUGINS = (
    "NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,"
    "PodSecurity,Priority,RuntimeClass,StorageObjectInUseProtection,PersistentVolumeClaimResize,"
    "DefaultIngressClass,TaintNodesByCondition,NodeRestriction,CertificateApproval,"
    "CertificateSigning,CertificateSubjectRestriction,MutatingAdmissionWebhook,"
    "ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,ResourceQuota"
)
# Identities with a kubeconfig each; kwok stands in for every kubelet.
IDENTITIES = ("admin", "controller-manager", "scheduler", "kwok")


@dataclass(frozen=True)
class Layout:
    """Where one control plane keeps its state and which loopback ports it uses."""

    state_dir: Path
    pki: Pki
    ports: dict[str, int]
    # The apiserver's address: loopback, or the bridge IP of real nodes (see _address_flags).
    address: str = "127.0.0.1"

    def kubeconfig(self, identity: str) -> Path:
        return self.state_dir / f"{identity}.kubeconfig"


def etcd(layout: Layout) -> list[str]:
    client, peer = (f"http://127.0.0.1:{layout.ports[p]}" for p in ("etcd", "peer"))
    return [
        str(tool("etcd")), "--name=default", f"--data-dir={layout.state_dir / 'etcd'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}", "--unsafe-no-fsync", "--log-level=warn",
        "--max-request-bytes=4194304",  # Argo's full Workflow CRD is close to the 1.5 MiB default
    ]  # fmt: skip


def kube_apiserver(layout: Layout) -> list[str]:
    p = layout.pki.path
    return [
        str(tool("kube-apiserver")),
        f"--etcd-servers=http://127.0.0.1:{layout.ports['etcd']}",
        f"--secure-port={layout.ports['apiserver']}", *_address_flags(layout),
        f"--tls-cert-file={p('apiserver.crt')}", f"--tls-private-key-file={p('apiserver.key')}",
        f"--client-ca-file={p('ca.crt')}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p('sa.pub')}",
        f"--service-account-signing-key-file={p('sa.key')}",
        f"--service-cluster-ip-range={SERVICE_IP.rsplit('.', 1)[0]}.0/24",
        "--authorization-mode=Node,RBAC",
        f"--enable-admission-plugins={ADMISSION_PLUGINS}",
        "--allow-privileged=true", "--profiling=false", "--event-ttl=1h",
        f"--cert-dir={layout.state_dir / 'apiserver-certs'}",
    ]  # fmt: skip


def _address_flags(layout: Layout) -> list[str]:
    if layout.address == "127.0.0.1":
        # Endpoints may not hold a loopback address, so the `kubernetes` Service gets none.
        return ["--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"]
    p = layout.pki.path
    # Real nodes: pods reach the apiserver through the `kubernetes` Service, whose endpoint the
    # default reconciler sets to this address; the apiserver dials each kubelet at its InternalIP
    # (no name resolution) with a client certificate the kubelet's webhook authorizer checks.
    # The aggregation layer serves metrics.k8s.io from metrics-server on the real node: the
    # apiserver proxies to it with the front-proxy client certificate and dials the pod's endpoint
    # itself (aggregator routing) rather than relying on kube-proxy's rules on this host.
    return [
        f"--bind-address={layout.address}", f"--advertise-address={layout.address}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--kubelet-client-certificate={p('apiserver-kubelet-client.crt')}",
        f"--kubelet-client-key={p('apiserver-kubelet-client.key')}",
        f"--requestheader-client-ca-file={p('front-proxy-ca.crt')}",
        f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={p(FRONT_PROXY_CLIENT + '.crt')}",
        f"--proxy-client-key-file={p(FRONT_PROXY_CLIENT + '.key')}",
        "--enable-aggregator-routing=true",
    ]  # fmt: skip


def _kubeconfig_flags(layout: Layout, identity: str) -> list[str]:
    config = layout.kubeconfig(identity)
    return [
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
    ]


def kube_controller_manager(layout: Layout) -> list[str]:
    p = layout.pki.path
    return [
        str(tool("kube-controller-manager")), *_kubeconfig_flags(layout, "controller-manager"),
        "--bind-address=127.0.0.1", f"--secure-port={layout.ports['kcm']}",
        "--leader-elect=false", "--use-service-account-credentials=true",
        f"--service-account-private-key-file={p('sa.key')}", f"--root-ca-file={p('ca.crt')}",
        f"--cluster-signing-cert-file={p('ca.crt')}", f"--cluster-signing-key-file={p('ca.key')}",
        f"--cert-dir={layout.state_dir / 'kcm-certs'}",
        *_autoscaling_flags(layout),
    ]  # fmt: skip


def _autoscaling_flags(layout: Layout) -> list[str]:
    if layout.address == "127.0.0.1":
        return []  # kwok pods report no usage: nothing for the HPA controller to read
    # Real nodes serve pod metrics (metrics-server): the HPA controller reads them every 5 s
    # rather than 15 s, so an HPA acts within a metrics-server resolution of a change in load.
    return ["--horizontal-pod-autoscaler-sync-period=5s"]


def kube_scheduler(layout: Layout) -> list[str]:
    return [
        str(tool("kube-scheduler")), *_kubeconfig_flags(layout, "scheduler"),
        "--bind-address=127.0.0.1", f"--secure-port={layout.ports['sched']}",
        "--leader-elect=false", f"--cert-dir={layout.state_dir / 'scheduler-certs'}",
    ]  # fmt: skip


def kwok(layout: Layout, stages: Path) -> list[str]:
    return [
        str(tool("kwok")), f"--kubeconfig={layout.kubeconfig('kwok')}", f"--config={stages}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1", "--node-lease-duration-seconds=40",
        f"--server-address=127.0.0.1:{layout.ports['kwok']}",
    ]  # fmt: skip


def kubeconfig(server: str, pki: Pki, identity: str) -> dict:
    """A self-contained kubeconfig (certificates inlined) for one identity."""

    def b64(name: str) -> str:
        return base64.b64encode(pki.path(name).read_bytes()).decode()

    cluster = {"server": server, "certificate-authority-data": b64("ca.crt")}
    user = {
        "client-certificate-data": b64(f"{identity}.crt"),
        "client-key-data": b64(f"{identity}.key"),
    }
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "catalog-test", "cluster": cluster}],
        "users": [{"name": identity, "user": user}],
        "contexts": [{"name": "catalog-test", "context": {"cluster": "catalog-test", "user": identity}}],
        "current-context": "catalog-test",
    }


def fake_nodes(count: int) -> list[dict]:
    """Nodes kwok manages (by annotation). No taint: workloads schedule without tolerations."""
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-node-{index}",
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": f"kwok-node-{index}",
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    "topology.kubernetes.io/zone": f"zone-{index}",
                },
            },
            "status": {"allocatable": resources, "capacity": resources},
        }
        for index in range(count)
    ]


def default_storage_class() -> dict:
    """Gives the DefaultStorageClass admission plugin something to assign; nothing provisions."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "standard",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kwok.x-k8s.io/none",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
