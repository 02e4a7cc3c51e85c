"""Per-user and per-group limits on clusters, workers, cores and memory (pure).

Configuration (`sciencelab.clusters.limits` in the Dask config, or `ClusterManager.limits`)::

    default: {clusters: 2, workers: 8, cores: 16, memory: 64}   # everybody; memory in GiB
    groups:  {cms: {clusters: 4, workers: 200}}                 # JupyterHub groups: the most generous applies
    users:   {alice: {workers: 500}}                            # a user's own entry wins over both
    local:   {cores: 4, memory: 8}                              # local clusters together, on this server

A missing key means no limit from that entry. Workers count what a cluster may grow to (the adaptive
maximum when adaptive), cores are workers times cores per worker, memory workers times memory per
worker. Local clusters also share the server they run on: together they may not ask for more cores
or memory than the server has (`make_local_limits`: its CPU and memory limits, unless `local` says
otherwise).
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import LimitError

LIMIT_KEYS = ("clusters", "workers", "cores", "memory")
# How a message counts each kind of limit.
UNITS = {"clusters": "clusters", "workers": "workers", "cores": "cores", "memory": "GiB of memory"}


@dataclass(frozen=True)
class Limits:
    """The limits of one user; `None` means unlimited. `source` says where they come from, for messages."""

    clusters: int | None = None
    workers: int | None = None
    cores: int | None = None
    memory: float | None = None  # GiB
    source: str = "default"


@dataclass(frozen=True)
class Usage:
    """What a user's clusters take: their number, and their workers, cores and memory (GiB) at most."""

    clusters: int = 0
    workers: int = 0
    cores: int = 0
    memory: float = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(*(getattr(self, key) + getattr(other, key) for key in LIMIT_KEYS))

    @classmethod
    def of_cluster(cls, workers: int, cores: int, memory: float, clusters: int = 1) -> "Usage":
        """What one cluster of `workers` workers with `cores` cores and `memory` GiB each takes."""
        return cls(clusters, workers, workers * cores, workers * memory)


def resolve_limits(config: Mapping, username: str, groups: Iterable[str]) -> Limits:
    """The limits of `username`, member of `groups`: their own entry, else the most generous group or default."""
    users = config.get("users", {})
    if username in users:
        return Limits(**{key: users[username].get(key) for key in LIMIT_KEYS}, source=f"user {username}")
    candidates = [
        (f"group {group}", config.get("groups", {})[group])
        for group in sorted(groups)
        if group in config.get("groups", {})
    ]
    candidates.append(("default", config.get("default", {})))
    values, sources = {}, set()
    for key in LIMIT_KEYS:
        # The most generous entry for each key; a missing key in any entry means unlimited.
        best, best_source = 0, "default"
        for source, entry in candidates:
            if entry.get(key) is None:
                best, best_source = None, source
                break
            if entry[key] > best:
                best, best_source = entry[key], source
        values[key] = best
        if best is not None:
            sources.add(best_source)
    return Limits(**values, source=", ".join(sorted(sources)) or "default")


def make_local_limits(config: Mapping, cpus: float, memory_bytes: int) -> Limits:
    """What all local clusters of a user may take together: the `local` entry, else this server's CPUs and memory."""
    local = config.get("local")
    if local is not None:
        return Limits(**{key: local.get(key) for key in LIMIT_KEYS}, source="local clusters")
    return Limits(cores=math.floor(cpus), memory=round(memory_bytes / 2**30, 1), source="this server's CPUs and memory")


def _amount(key: str, value: float) -> str:
    return f"{value:g} {UNITS[key]}"


def check_limits(limits: Limits, current: Usage, request: Usage, action: str):
    """Refuse `request` (a new cluster, or a cluster's growth) if it would take `current` above `limits`.

    :raises LimitError: naming what would be exceeded, by how much, and the limit's source.
    """
    total = current + request
    for key in LIMIT_KEYS:
        limit = getattr(limits, key)
        # A hair of slack for memory, whose GiB are fractions.
        if limit is not None and getattr(request, key) > 0 and getattr(total, key) > limit + 1e-9:
            raise LimitError(
                f"{key}: {action} would use {_amount(key, getattr(total, key))} in all, above your limit of "
                f"{_amount(key, limit)} ({limits.source}); you use {_amount(key, getattr(current, key))} now. "
                "Shut down or scale down a cluster first."
            )
