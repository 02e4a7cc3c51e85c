"""Read the process facts the GPU monitor needs from procfs; called on the sampler's thread.

Plain `os` calls on string paths: this runs every tick, and pathlib's objects cost more than the
reads themselves.
"""

import os
from collections.abc import Iterable


def read_parents(proc: str, roots: Iterable[int]) -> dict[int, int]:
    """PID -> parent PID of every process below `roots` (the kernels), in this server's namespace.

    Follows `/proc/<pid>/task/<tid>/children` down from the roots, so a tick reads a few files per
    kernel instead of scanning every process of the machine.
    """
    parents = {}
    pending = list(roots)
    while pending:
        pid = pending.pop()
        tasks = f"{proc}/{pid}/task"
        try:
            texts = [read_text(f"{tasks}/{tid}/children") for tid in os.listdir(tasks)]
        except OSError:
            continue  # the process, or one of its threads, ended while we looked
        for child in (int(word) for text in texts for word in text.split()):
            if child not in parents:
                parents[child] = pid
                pending.append(child)
    return parents


def read_statuses(host_proc: str, pids: Iterable[int]) -> dict[int, str]:
    """`<host_proc>/<pid>/status` of each PID NVML reported; processes that ended are left out."""
    statuses = {}
    for pid in pids:
        try:
            statuses[pid] = read_text(f"{host_proc}/{pid}/status")
        except OSError:
            continue
    return statuses


def read_text(path: str) -> str:
    with open(path) as file:
        return file.read()
