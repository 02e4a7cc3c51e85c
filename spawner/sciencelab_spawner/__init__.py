"""ScienceLab's JupyterHub spawners: admin-declared profiles, validated on every spawn."""

from .local import LocalProfileSpawner

__all__ = ["LocalProfileSpawner"]
