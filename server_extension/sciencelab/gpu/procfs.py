"""Read the process facts the GPU monitor needs from procfs; called on the sampler's thread."""

from collections.abc import Iterable
from pathlib import Path


def read_parents(proc: Path) -> dict[int, int]:
    """PID -> parent PID of every process in `proc` (this server's namespace)."""
    parents = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        # The command name (field 2) may hold spaces and parentheses: the fields after it are safe.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def read_statuses(host_proc: Path, pids: Iterable[int]) -> dict[int, str]:
    """`<host_proc>/<pid>/status` of each PID NVML reported; processes that ended are left out."""
    statuses = {}
    for pid in pids:
        try:
            statuses[pid] = (host_proc / str(pid) / "status").read_text()
        except OSError:
            continue
    return statuses
