"""Undoing real-node runs: `teardown` of one run (its stop, `make cluster-down`), `sweep_stale`
for runs whose harness was killed, and `leftovers`, the check that nothing of a run remains."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

from tools.cluster import processes

from . import host

STATE_PREFIX = "catalog-realnode-"
RECORD = "node.json"


def read_record(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / RECORD).read_text())
    except (OSError, ValueError):
        return None


def _run_alive(state_dir: Path, record: dict | None) -> bool:
    if record is None:
        return False
    if record.get("detached"):
        return bool(host.processes_mentioning(f"{state_dir}/"))
    return processes.alive(record["owner"])


def live_runs(exclude: Path | None = None) -> list[Path]:
    """State directories of real-node runs whose owner still runs, oldest first."""
    found = [
        state_dir
        for state_dir in Path(tempfile.gettempdir()).glob(STATE_PREFIX + "*")
        if state_dir != exclude and _run_alive(state_dir, read_record(state_dir))
    ]
    return sorted(found, key=lambda d: d.stat().st_mtime)


def teardown(state_dir: Path) -> None:
    """Undo one run: processes, pods, mounts, bridges, its chain and cgroups; when no other run is
    left, also the kubelet's and kube-proxy's KUBE-* chains, the kernel settings and the paths
    they hardcode. Then remove the state directory."""
    record = read_record(state_dir) or {}
    host.kill_mentioning(f"{state_dir}/")  # kubelet, kube-proxy, containerd and every runc shim
    for cgroup in record.get("cgroups", []):
        host.kill_cgroup(cgroup)
    host.unmount_all(state_dir)
    # This run's own links go now, whoever else runs: a check after the run looks for them.
    host.remove_log_links(f"{state_dir}/")
    for bridge in record.get("bridges", []):
        host.delete_bridge(bridge)
    if "chain" in record:
        host.remove_chains(record["chain"])
    if record.get("enforcer"):  # one per host (nodes.py): its chains and ipsets are this run's
        host.remove_enforcer_state()
    for cgroup in record.get("cgroups", []):
        host.remove_cgroup(cgroup)
    if "before" in record and not live_runs(exclude=state_dir):
        host.remove_chains(host.KUBE_CHAIN_PREFIX)
        host.remove_enforcer_state()
        host.restore(record["before"], str(Path(tempfile.gettempdir()) / STATE_PREFIX))
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(state_dir)


def sweep_stale() -> list[Path]:
    """Tear down the runs whose harness died (killed before its atexit could run); runs started by
    `make cluster-up` (detached) are left to `make cluster-down`."""
    swept = []
    for state_dir in sorted(Path(tempfile.gettempdir()).glob(STATE_PREFIX + "*")):
        record = read_record(state_dir)
        if record is not None and (record.get("detached") or processes.alive(record["owner"])):
            continue
        teardown(state_dir)
        swept.append(state_dir)
    return swept


def leftovers(state_dir: Path, record: dict, *, shared: bool) -> list[str]:
    """What of run `state_dir` (its node.json `record`) is still on the host; with `shared`, also
    the state all runs share (KUBE-* chains, kernel settings, hardcoded paths), which the last run
    out restores. kube-router's chains and ipsets count as the run's own when it ran the enforcer,
    as shared otherwise. Empty when the teardown was complete."""
    found = [f"process {pid}" for pid in host.processes_mentioning(f"{state_dir}/")]
    found += [f"cgroup {path}" for cgroup in record.get("cgroups", []) for path in host.cgroup_dirs(cgroup)]
    found += [f"mount {point}" for point in host.mounts_under(state_dir)]
    found += [f"state directory {state_dir}"] if state_dir.exists() else []
    found += [f"bridge {name}" for name in record.get("bridges", []) if Path("/sys/class/net", name).exists()]
    found += [f"chain {chain}" for chain in host.chains_named(record["chain"])] if "chain" in record else []
    found += [f"log link {link}" for link in host.log_links(f"{state_dir}/")]
    if shared or record.get("enforcer"):
        found += [f"chain {c}" for prefix in host.ENFORCER_CHAIN_PREFIXES for c in host.chains_named(prefix)]
        found += [f"ipset {name}" for name in host.ipsets_named(host.ENFORCER_IPSET_PREFIXES)]
    if shared and "before" in record:
        found += [f"chain {chain}" for chain in host.chains_named(host.KUBE_CHAIN_PREFIX)]
        now = host.snapshot()
        for name, value in record["before"]["sysctls"].items():
            if now["sysctls"][name] != value:
                found.append(f"sysctl {name} = {now['sysctls'][name]} (was {value})")
        for path, existed in record["before"]["paths"].items():
            if now["paths"][path] and not existed:
                found.append(f"path {path}")
    return found
