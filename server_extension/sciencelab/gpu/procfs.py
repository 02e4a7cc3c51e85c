"""Read the process facts the GPU monitor needs from procfs; called on the sampler's thread."""

from collections.abc import Iterable
from pathlib import Path


def read_parents(proc: Path, roots: Iterable[int]) -> dict[int, int]:
    """PID -> parent PID of every process below `roots` (the kernels), in this server's namespace.

    Follows `/proc/<pid>/task/<tid>/children` down from the roots, so a tick reads a few files per
    kernel instead of scanning every process of the machine.
    """
    parents = {}
    pending = list(roots)
    while pending:
        pid = pending.pop()
        for children in (proc / str(pid) / "task").glob("*/children"):
            try:
                text = children.read_text()
            except OSError:
                continue  # the thread or process ended while we looked
            for child in map(int, text.split()):
                if child not in parents:
                    parents[child] = pid
                    pending.append(child)
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
