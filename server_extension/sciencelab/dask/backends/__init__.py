"""The backends the cluster manager knows, by the `backend` name templates use.

A backend's module is imported only when a template uses it, so an optional library (dask-gateway,
dask-kubernetes, dask-jobqueue) is needed only where an admin configured that backend.
"""

import importlib

from .base import ClusterBackend, ClusterHandle, DiscoveredCluster

BACKENDS = {
    "local": ("sciencelab.dask.backends.local", "LocalBackend", "distributed"),
    "gateway": ("sciencelab.dask.backends.gateway", "GatewayBackend", "sciencelab[gateway]"),
    "kubernetes": ("sciencelab.dask.backends.kubernetes", "KubernetesBackend", "sciencelab[kubernetes]"),
    "htcondor": ("sciencelab.dask.backends.htcondor", "HTCondorBackend", "sciencelab[jobqueue]"),
    "slurm": ("sciencelab.dask.backends.slurm", "SlurmBackend", "sciencelab[jobqueue]"),
}


class BackendUnavailable(ImportError):
    """A template names a backend whose library is not installed; the message says what to install."""


def load_backend(name: str) -> type[ClusterBackend]:
    """The backend class for `name` (a key of `BACKENDS`)."""
    module, cls, package = BACKENDS[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as error:
        raise BackendUnavailable(
            f"the {name} backend needs {error.name or 'a missing library'}: pip install '{package}'"
        ) from error


__all__ = ["BACKENDS", "BackendUnavailable", "ClusterBackend", "ClusterHandle", "DiscoveredCluster", "load_backend"]
