"""Real nodes (kubelet + containerd + runc on a CNI bridge, kube-proxy) joined to the test control
plane; see nodes.py for the order of things and host.py for what is undone afterwards."""

from .config import NODE_LABEL, TAINT, TOLERATION, label_selector, on_real_node
from .nodes import RealNodes, start_cluster, sweep_stale, teardown, unmet_prerequisites

__all__ = [
    "NODE_LABEL",
    "TAINT",
    "TOLERATION",
    "RealNodes",
    "label_selector",
    "on_real_node",
    "start_cluster",
    "sweep_stale",
    "teardown",
    "unmet_prerequisites",
]
