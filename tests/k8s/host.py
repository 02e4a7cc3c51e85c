"""What the single-node test cluster changes on this host, recorded before it starts and undone after.

The cluster (`cluster.py`) runs as root on the host's own network and kernel, so some of what it
does is not private to it:
- the kubelet sets kernel tunables (`setupKernelTunables` in pkg/kubelet/cm: vm/overcommit_memory,
  vm/panic_on_oom, kernel/panic, kernel/panic_on_oops, kernel/keys/*), kube-proxy sets
  net/ipv4/conf/all/route_localnet, the CNI bridge plugin net/ipv4/ip_forward: `HOST_SYSCTLS`;
- kube-proxy adds iptables chains (all named KUBE-*), jumps to them from the built-in chains, and
  with the nf_tables backend of iptables, the tables it touches (its canary chain creates `mangle`);
- the cluster's bridge, its cgroup subtree (`CGROUP_NAME` in every hierarchy), its state directory
  `CLUSTER_ROOT`, and directories components create outside it (`SIDE_PATHS`: network namespace
  files, pod log folders, the host-path provisioner's volumes, libcni's cache).
Its mounts (kubelet's volumes, containers' root file systems, network namespaces) stay inside the
cluster's own mount namespace and end with it.

`host_state()` reads all of that; the cluster saves it to `RECORD_PATH` before changing anything,
and `restore_host(record)` undoes every change, from a clean stop or after a run that was killed
(the next start finds the record and restores it first). Only one cluster runs on a host at a time
(`cluster.py` holds a lock), so KUBE-* chains, the bridge and the cgroup subtree are always ours.
"""

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil

from ..batch import processes_in_namespace, wait_until
from .apiserver import KUBERNETES_DIR

CLUSTER_ROOT = Path("/var/lib/sciencelab-kube")
RECORD_PATH = CLUSTER_ROOT / "host-record.json"
BRIDGE = "sciencelab0"
CGROUP_NAME = "sciencelab-kube"
HOST_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/ip_forward",
)
# Created by components outside CLUSTER_ROOT, whatever their flags say: containerd's network
# namespace files and shim sockets, the kubelet's pod log folders, libcni's result cache, the
# host-path provisioner's volumes (always /tmp/hostpath_pv in 1.20); the rest are defaults the
# cluster's configuration moves away from, listed so that a component that creates one anyway shows.
SIDE_PATHS = (
    "/run/netns",
    "/run/containerd",
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/cni",
    "/tmp/hostpath_pv",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/etc/kubernetes",
    "/opt/cni",
    "/opt/containerd",
    "/usr/libexec/kubernetes",
)
# What runs only in the cluster's mount namespace.
CLUSTER_EXECUTABLES = (
    *(str(KUBERNETES_DIR / name) for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")),
    *(str(KUBERNETES_DIR / name) for name in ("kubelet", "kube-proxy")),
    shutil.which("etcd"),
    shutil.which("containerd"),
    shutil.which("containerd-shim-runc-v2"),
)
OUR_CHAIN_PREFIX = "KUBE-"
IPTABLES = {"ipv4": "iptables", "ipv6": "ip6tables"}
NFT_FAMILY = {"ipv4": "ip", "ipv6": "ip6"}


def read_sysctl(name: str) -> str:
    return Path("/proc/sys", name).read_text().strip()


def cgroup_hierarchies() -> list[Path]:
    """The mount points of every cgroup (v1) and cgroup2 hierarchy of this host."""
    hierarchies = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        filesystem = fields[fields.index("-") + 1]
        if filesystem in ("cgroup", "cgroup2"):
            hierarchies.append(Path(fields[4]))
    return hierarchies


def iptables_chains(save_output: str) -> dict[str, list[str]]:
    """`{table: [chain, ...]}` from `iptables-save` output."""
    chains, table = {}, None
    for line in save_output.splitlines():
        if line.startswith("*"):
            table = line[1:]
            chains[table] = []
        elif line.startswith(":"):
            chains[table].append(line[1:].split()[0])
    return chains


def make_iptables_cleanup(save_output: str) -> str:
    """`iptables-restore --noflush` input that removes the KUBE-* chains in `save_output` and every
    rule of another chain that jumps to one of them; empty when there are none."""
    script, table, jumps, ours = [], None, [], []

    def close_table():
        if ours or jumps:
            script.extend([f"*{table}", *jumps])
            script.extend(f"-F {chain}" for chain in ours)
            script.extend(f"-X {chain}" for chain in ours)
            script.append("COMMIT")

    for line in save_output.splitlines():
        if line.startswith("*"):
            table, jumps, ours = line[1:], [], []
        elif line == "COMMIT":
            close_table()
        elif line.startswith(":") and line[1:].startswith(OUR_CHAIN_PREFIX):
            ours.append(line[1:].split()[0])
        elif line.startswith("-A "):
            words = line.split()
            if words[1].startswith(OUR_CHAIN_PREFIX):
                continue  # flushed with its chain
            targets = {words[i + 1] for i, word in enumerate(words[:-1]) if word in ("-j", "-g", "--jump", "--goto")}
            if any(target.startswith(OUR_CHAIN_PREFIX) for target in targets):
                jumps.append("-D" + line[2:])
    return "\n".join(script) + "\n" if script else ""


def _iptables_save(family: str) -> str:
    return subprocess.run([f"{IPTABLES[family]}-save"], capture_output=True, text=True, check=True).stdout


def _listing(path: str) -> list[str] | None:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return []


def _mount_points() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}


def host_state() -> dict:
    """Everything the cluster may change on the host, as plain data (see the module docstring)."""
    mounts = _mount_points()
    return {
        "sysctls": {name: read_sysctl(name) for name in HOST_SYSCTLS},
        "paths": {path: _listing(path) for path in SIDE_PATHS},
        "iptables": {family: iptables_chains(_iptables_save(family)) for family in IPTABLES},
        "bridge": Path("/sys/class/net", BRIDGE).exists(),
        "cgroups": sorted(str(root / CGROUP_NAME) for root in cgroup_hierarchies() if (root / CGROUP_NAME).exists()),
        "cluster_root": CLUSTER_ROOT.exists(),
        "mounts": sorted(
            mount for mount in mounts if mount.startswith((str(CLUSTER_ROOT), "/run/netns/", "/tmp/hostpath_pv"))
        ),
    }


def save_record(state: dict, holder: int | None = None, namespace: str | None = None):
    """Write the host's state before the cluster changes it, with the first process of the mount
    namespace the cluster's processes share, and that namespace (for `restore_host` after a
    killed run)."""
    CLUSTER_ROOT.mkdir(parents=True, exist_ok=True)
    temporary = RECORD_PATH.with_suffix(".tmp")
    identity = process_identity(holder) if holder else None
    temporary.write_text(json.dumps({**state, "boot_id": boot_id(), "holder": identity, "namespace": namespace}))
    os.replace(temporary, RECORD_PATH)


def load_record() -> dict | None:
    try:
        return json.loads(RECORD_PATH.read_text())
    except FileNotFoundError:
        return None


def cgroup_processes() -> list[int]:
    """Every process in the cluster's cgroup subtree (the containers and their sandboxes)."""
    pids = set()
    for root in cgroup_hierarchies():
        for directory, _, files in os.walk(root / CGROUP_NAME):
            if "cgroup.procs" in files:
                try:
                    pids.update(int(pid) for pid in Path(directory, "cgroup.procs").read_text().split())
                except OSError:
                    pass  # removed meanwhile
    return sorted(pids)


def create_cgroup_root():
    """The cluster's cgroup in every hierarchy (the kubelet's `cgroupRoot` must exist); in v1's
    cpuset its CPUs and memory nodes are the parent's, as processes can join only then."""
    for root in cgroup_hierarchies():
        cgroup = root / CGROUP_NAME
        cgroup.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (cgroup / name).exists() and not (cgroup / name).read_text().strip():
                (cgroup / name).write_text((root / name).read_text())


def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def process_identity(pid: int) -> list | None:
    """[pid, start time]: unlike the pid alone, never that of a later process."""
    try:
        return [pid, psutil.Process(pid).create_time()]
    except psutil.NoSuchProcess:
        return None


def _executable(pid: int) -> str | None:
    """The program process `pid` runs; None once it has ended (a zombie has none either)."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def namespace_processes(record: dict) -> list[int]:
    """The processes in the cluster's mount namespace while it is still the cluster's: the number
    of a namespace that ended goes to a later one (after a reboot, or while the host runs), so
    it counts only while the namespace's first process (`holder`) or one of the cluster's
    components (CLUSTER_EXECUTABLES) still runs in it."""
    namespace, holder = record.get("namespace"), record.get("holder")
    if not namespace or record.get("boot_id") != boot_id():
        return []
    pids = processes_in_namespace(namespace)
    executables = {os.path.realpath(path) for path in CLUSTER_EXECUTABLES if path}
    if (holder and process_identity(holder[0]) == holder) or any(_executable(pid) in executables for pid in pids):
        return pids
    return []


def kill_cluster_processes(record: dict):
    """SIGKILL every process of the cluster: those in its mount namespace (its components and the
    containerd shims) and those in its cgroups (the containers, each in a mount namespace of its own)."""
    namespace_pids = namespace_processes(record)

    def remaining():
        return [pid for pid in namespace_pids if _executable(pid)] + cgroup_processes()

    for _ in range(2):  # a shim may start a process while we kill
        for pid in remaining():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    wait_until(lambda: not remaining(), 30, "the end of the cluster's processes", describe=lambda: str(remaining()))


def remove_cgroups():
    for root in cgroup_hierarchies():
        for directory, _, _ in os.walk(root / CGROUP_NAME, topdown=False):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass


def remove_iptables_chains(tables_before: dict[str, dict[str, list[str]]]):
    """Remove the KUBE-* chains and the jumps to them, then the tables that did not exist in
    `tables_before` and hold no rule now (nf_tables keeps a table once a chain was added to it)."""
    for family, command in IPTABLES.items():
        script = make_iptables_cleanup(_iptables_save(family))
        if script:
            subprocess.run([f"{command}-restore", "--noflush"], input=script, text=True, check=True)
        save_output = _iptables_save(family)
        for table in set(iptables_chains(save_output)) - set(tables_before[family]):
            if not _table_rules(save_output, table):
                subprocess.run(["nft", "delete", "table", NFT_FAMILY[family], table], check=True)


def _table_rules(save_output: str, table: str) -> list[str]:
    rules, current = [], None
    for line in save_output.splitlines():
        if line.startswith("*"):
            current = line[1:]
        elif current == table and line.startswith("-A "):
            rules.append(line)
    return rules


def remove_side_paths(before: dict[str, list[str] | None]):
    """Remove what the cluster added under SIDE_PATHS: a path that did not exist, whole; in one
    that did, the entries it did not have (mount points of the host's own namespace excepted)."""
    mounts = _mount_points()
    for path, entries_before in before.items():
        entries_now = _listing(path)
        if entries_now is None:
            continue
        if entries_before is None:
            shutil.rmtree(path, ignore_errors=True)
            continue
        for entry in set(entries_now) - set(entries_before):
            target = os.path.join(path, entry)
            if target in mounts:
                continue
            if os.path.isdir(target) and not os.path.islink(target):
                shutil.rmtree(target, ignore_errors=True)
            else:
                os.unlink(target)


def restore_host(record: dict):
    """Undo everything the cluster that saved `record` changed; safe to repeat, and enough after a
    cluster whose test run was killed: its processes go first, so nothing re-adds what is removed."""
    kill_cluster_processes(record)
    remove_cgroups()
    remove_iptables_chains(record["iptables"])
    if Path("/sys/class/net", BRIDGE).exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], check=True)
    for name, value in record["sysctls"].items():
        if read_sysctl(name) != value:
            Path("/proc/sys", name).write_text(value)
    remove_side_paths(record["paths"])
    # The record goes last: until then a later start knows there is something to restore.
    for entry in CLUSTER_ROOT.iterdir():
        if entry != RECORD_PATH:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    RECORD_PATH.unlink()
    CLUSTER_ROOT.rmdir()
