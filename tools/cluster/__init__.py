"""The loopback test cluster that `make cluster-up` / `cluster-down` and the cluster tiers start
(controlplane: etcd, the Kubernetes control plane and kwok nodes, with its PKI, components and
process supervision), and the upstream charts `make upstream` assembles for the ci inventory.
Run from the repo root: `python -m tools.cluster.controlplane up|down|status`."""
