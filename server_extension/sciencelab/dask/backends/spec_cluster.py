"""What the `local`, `htcondor` and `slurm` backends share: a `SpecCluster` whose scheduler runs here.

`LocalCluster` and dask-jobqueue's clusters are both distributed `SpecCluster`s with their scheduler
in the Jupyter server's event loop (as dask-labextension runs them): it ends with the server, its idle
timeout closes it, its dashboard is reached through jupyter-server-proxy at
`<base_url>proxy/<port>/status`, and scaling is the cluster's own `scale` and `adapt`.
"""

from dataclasses import dataclass
from typing import Any

from distributed import Adaptive, SpecCluster
from jupyter_server.utils import url_path_join

from ..clusters import WorkerInfo
from ..errors import ClusterGone
from .base import ClusterBackend, ClusterHandle

# Scheduler statuses after which it no longer serves (its idle timeout closed it).
SCHEDULER_ENDED = ("closing", "closed", "failed")


@dataclass
class SpecClusterHandle(ClusterHandle):
    """A `SpecCluster`'s handle, with the `Adaptive` that scales it while it is adaptive."""

    adaptive: Adaptive | None = None


class SpecClusterBackend(ClusterBackend):
    """Clusters whose `cluster` is a `SpecCluster` with its scheduler in this process."""

    async def scale(self, handle: SpecClusterHandle, workers: int):
        cluster: SpecCluster = handle.cluster
        if handle.adaptive is not None:
            handle.adaptive.stop()  # a fixed size ends adaptive scaling, as `Cluster.adapt` stops the last one
            handle.adaptive = None
        cluster.scale(workers)

    async def adapt(self, handle: SpecClusterHandle, minimum: int, maximum: int):
        handle.adaptive = handle.cluster.adapt(Adaptive, minimum=minimum, maximum=maximum)

    def requested_workers(self, handle: ClusterHandle, requested: int) -> int:
        return len(handle.cluster.worker_spec)

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        if self.scheduler_ended(handle):
            raise ClusterGone(f"the scheduler of {handle.name} closed")
        return await super().workers(handle, requested)

    @staticmethod
    def scheduler_ended(handle: ClusterHandle) -> bool:
        """Whether the in-process scheduler closed itself (its idle timeout)."""
        return handle.cluster.scheduler.status.name in SCHEDULER_ENDED

    def dashboard_url(self, cluster: Any) -> str | None:
        """The dashboard through jupyter-server-proxy; None when bokeh is not installed."""
        dashboard = cluster.scheduler.services.get("dashboard")
        if dashboard is None:
            return None
        return url_path_join(self.base_url, "proxy", str(dashboard.port), "status")
