"""Per-user and per-group limits on clusters, workers and cores (pure).

Configuration (`sciencelab.clusters.limits` in the Dask config, or `ClusterManager.limits`)::

    default: {clusters: 2, workers: 8, cores: 16}     # everybody
    groups:  {cms: {clusters: 4, workers: 200}}       # JupyterHub groups: the most generous applies
    users:   {alice: {workers: 500}}                  # a user's own entry wins over both

A missing key means no limit from that entry. Workers count what a cluster may grow to (the adaptive
maximum when adaptive), cores are workers times cores per worker.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import LimitError

LIMIT_KEYS = ("clusters", "workers", "cores")


@dataclass(frozen=True)
class Limits:
    """The limits of one user; `None` means unlimited. `source` says where they come from, for messages."""

    clusters: int | None = None
    workers: int | None = None
    cores: int | None = None
    source: str = "default"


@dataclass(frozen=True)
class Usage:
    """What a user's clusters take: their number, their workers and cores at most."""

    clusters: int = 0
    workers: int = 0
    cores: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.clusters + other.clusters, self.workers + other.workers, self.cores + other.cores)


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


def check_limits(limits: Limits, current: Usage, request: Usage, action: str):
    """Refuse `request` (a new cluster, or a cluster's growth) if it would take `current` above `limits`.

    :raises LimitError: naming what would be exceeded, by how much, and the limit's source.
    """
    total = current + request
    for key in LIMIT_KEYS:
        limit = getattr(limits, key)
        if limit is not None and getattr(request, key) > 0 and getattr(total, key) > limit:
            raise LimitError(
                f"{key}: {action} would use {getattr(total, key)} {key} in all, above your limit of {limit} "
                f"({limits.source}); you use {getattr(current, key)} now. Shut down or scale down a cluster first."
            )
