"""Real nodes (kubelet + containerd + runc on a CNI bridge, kube-proxy) joined to the test control
plane; see nodes.py for the order of things and host.py for what is undone afterwards."""

from .config import NODE_LABEL, TAINT, TOLERATION, label_selector, node_values, on_real_node, placement_values
from .nodes import RealNodes, start_cluster, sweep_stale, teardown, unmet_prerequisites

__all__ = [
    "NODE_LABEL",
    "TAINT",
    "TOLERATION",
    "RealNodes",
    "label_selector",
    "node_values",
    "on_real_node",
    "placement_values",
    "start_cluster",
    "sweep_stale",
    "teardown",
    "unmet_prerequisites",
]
