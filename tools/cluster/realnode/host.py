"""What a real node changes on the host outside its state directory, and how each change is undone:
the bridge, the egress guard, cgroups, mounts, the kubelet's and kube-proxy's iptables chains, the
kernel settings the kubelet and the CNI bridge rewrite, and the few paths the kubelet hardcodes."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Rewritten by the kubelet (protectKernelDefaults: false is the only setting that starts here) and
# by the CNI bridge plugin (forwarding for its gateway); the last node to go puts them back.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Paths the kubelet and containerd write whatever their configuration says. (Network namespaces
# are not among them: containerd mounts them under its state directory, see config.py.)
HARDCODED_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/run/containerd")
# Chains the kubelet (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) and kube-proxy leave.
KUBE_CHAIN_PREFIX = "KUBE-"
# What kube-router's NetworkPolicy controller writes (and leaves when it is stopped): its own
# chains and the ipsets of policy peers. No other component here uses these names.
ENFORCER_CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-")
ENFORCER_IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-")
# Pod subnets come from here: clear of podman's 10.88.0.0/16, the Service range 10.96.0.0/24 and
# kwok's 10.244.0.0/16.
POD_SUBNETS = ipaddress.ip_network("10.123.0.0/16")
_MNT_DETACH = 2


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


# -- kernel settings and hardcoded paths ------------------------------------------------------------
def snapshot() -> dict:
    """The settings and paths a node may change, as they are before it starts."""
    return {
        "sysctls": {name: Path("/proc/sys", name).read_text().strip() for name in SYSCTLS},
        "paths": {path: os.path.lexists(path) for path in HARDCODED_PATHS},
    }


def restore(before: dict, state_prefix: str) -> None:
    """Put the kernel settings back and remove what the kubelet and containerd left in their
    hardcoded paths (only what did not exist before; links into other runs' state are kept)."""
    for name, value in before["sysctls"].items():
        path = Path("/proc/sys", name)
        if path.read_text().strip() != value:
            path.write_text(value)
    remove_log_links(state_prefix, dangling=True)
    for path, existed in before["paths"].items():
        if not existed and os.path.lexists(path) and not mounts_under(Path(path)):
            shutil.rmtree(path, ignore_errors=True)


def log_links(prefix: str, *, dangling: bool = False) -> list[Path]:
    """The kubelet's /var/log/containers links into `prefix` (and, with `dangling`, those whose
    target is gone)."""
    logs = Path("/var/log/containers")
    if not logs.is_dir():
        return []
    return [
        link
        for link in logs.iterdir()
        if link.is_symlink() and ((dangling and not link.exists()) or os.readlink(link).startswith(prefix))
    ]


def remove_log_links(prefix: str, *, dangling: bool = False) -> None:
    """Remove `log_links`, so a run leaves none of its own even while another run keeps the folder."""
    for link in log_links(prefix, dangling=dangling):
        link.unlink(missing_ok=True)


# -- network ----------------------------------------------------------------------------------------
def free_subnet() -> ipaddress.IPv4Network:
    """A /24 of POD_SUBNETS that no interface on the host uses."""
    used = []
    for link in json.loads(sh("ip", "-j", "-4", "addr", "show").stdout):
        for address in link.get("addr_info", []):
            used.append(ipaddress.ip_network(f"{address['local']}/{address['prefixlen']}", strict=False))
    for subnet in POD_SUBNETS.subnets(new_prefix=24):
        if subnet.network_address.packed[2] and not any(subnet.overlaps(u) for u in used):
            return subnet
    raise RuntimeError(f"no free /24 left in {POD_SUBNETS}")


def create_bridge(name: str, gateway: str, prefixlen: int) -> None:
    sh("ip", "link", "add", name, "type", "bridge")
    sh("ip", "addr", "add", f"{gateway}/{prefixlen}", "dev", name)
    sh("ip", "link", "set", name, "up")


def delete_bridge(name: str) -> None:
    if Path("/sys/class/net", name).exists():
        sh("ip", "link", "delete", name, check=False)


def guard_egress(chain: str, subnets: list[str]) -> None:
    """Pods have a default route through the host; this chain drops what they send anywhere but
    the pod subnets, so no pod traffic leaves the machine (Services and the host are reached by
    INPUT, after kube-proxy's DNAT, and are unaffected)."""
    sh("iptables", "-N", chain)
    for subnet in subnets:
        for other in subnets:
            sh("iptables", "-A", chain, "-s", subnet, "-d", other, "-j", "RETURN")
        sh("iptables", "-A", chain, "-s", subnet, "-j", "DROP")
    sh("iptables", "-I", "FORWARD", "1", "-j", chain)


def remove_chains(prefix: str) -> list[str]:
    """Delete every iptables/ip6tables chain named `prefix*` in every table, with the rules of
    other chains that jump to them; returns what it removed as `tool:table:chain`."""
    removed = []
    for binary in ("iptables", "ip6tables"):
        table = None
        chains: dict[str, list[str]] = {}
        jumps: list[tuple[str, list[str]]] = []
        for line in sh(f"{binary}-save", check=False).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":") and line[1:].startswith(prefix) and table:
                chains.setdefault(table, []).append(line[1:].split()[0])
            elif line.startswith("-A ") and table:
                words = shlex.split(line)
                if not words[1].startswith(prefix) and any(w.startswith(prefix) for w in words[2:]):
                    jumps.append((table, ["-D", *words[1:]]))
        for table, rule in jumps:
            sh(binary, "-t", table, *rule, check=False)
        for table, names in chains.items():
            for name in names:
                sh(binary, "-t", table, "-F", name, check=False)
            for name in names:
                sh(binary, "-t", table, "-X", name, check=False)
                removed.append(f"{binary}:{table}:{name}")
    return removed


def chains_named(prefix: str) -> list[str]:
    found = []
    for binary in ("iptables", "ip6tables"):
        table = None
        for line in sh(f"{binary}-save", check=False).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":" + prefix):
                found.append(f"{binary}:{table}:{line[1:].split()[0]}")
    return found


def ipsets_named(prefixes: tuple[str, ...]) -> list[str]:
    if shutil.which("ipset") is None:
        return []
    return [name for name in sh("ipset", "list", "-name", check=False).stdout.split() if name.startswith(prefixes)]


def remove_enforcer_state() -> list[str]:
    """Delete kube-router's chains, then its ipsets (a set is busy while a rule names it)."""
    removed = [chain for prefix in ENFORCER_CHAIN_PREFIXES for chain in remove_chains(prefix)]
    for name in ipsets_named(ENFORCER_IPSET_PREFIXES):
        sh("ipset", "destroy", name, check=False)
        removed.append(f"ipset:{name}")
    return removed


# -- cgroups (v1 hierarchies and the unified one runc also uses) -------------------------------------
def hierarchies() -> list[Path]:
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and os.path.ismount(p))


def create_cgroup(name: str) -> None:
    """`/<name>` in every hierarchy; a new cpuset is empty until it copies its parent's CPUs and
    memory nodes, and the kubelet refuses a cgroupRoot that is missing from one of them."""
    for hierarchy in hierarchies():
        if hierarchy.name == "unified":
            continue
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        for setting in ("cpuset.cpus", "cpuset.mems"):
            if (path / setting).exists():
                (path / setting).write_text((hierarchy / setting).read_text())


def cgroup_dirs(name: str) -> list[Path]:
    return [hierarchy / name for hierarchy in hierarchies() if (hierarchy / name).is_dir()]


def kill_cgroup(name: str) -> None:
    """SIGKILL every process in the `/<name>` subtrees (the pods' processes), until none is left."""

    def members() -> list[int]:
        return [
            int(pid)
            for top in cgroup_dirs(name)
            for procs in top.rglob("cgroup.procs")
            for pid in procs.read_text().split()
        ]

    _kill_until_gone(members, f"processes of cgroup /{name}")


def remove_cgroup(name: str) -> None:
    for top in cgroup_dirs(name):
        for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


# -- processes and mounts ----------------------------------------------------------------------------
def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (a state directory: containerd, the kubelet,
    kube-proxy and every runc shim name it in their flags)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(proc.name))
    return found


def kill_mentioning(text: str) -> None:
    _kill_until_gone(lambda: processes_mentioning(text), f"processes naming {text}")


def _kill_until_gone(find: Callable[[], list[int]], what: str, timeout: float = 10.0) -> None:
    """SIGKILL what `find` returns (reaping our own children) until it returns nothing."""
    deadline = time.monotonic() + timeout
    while pids := find():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} survive SIGKILL: {sorted(pids)}")
        time.sleep(0.05)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first (mountinfo escapes spaces as \\040)."""
    prefix = str(path)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=lambda p: -p.count("/"))


def unmount_all(path: Path) -> None:
    """Detach every mount below `path` (the kubelet's bind of its root dir, pod volumes, rootfs
    overlays, network namespaces), so removing the directory can never reach into a mount."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    for _ in range(5):
        points = mounts_under(path)
        if not points:
            return
        for point in points:
            libc.umount2(point.encode(), _MNT_DETACH)
    left = mounts_under(path)
    if left:
        raise RuntimeError(f"mounts under {path} survive umount: {left}")
