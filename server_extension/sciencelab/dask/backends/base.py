"""What every backend provides to the cluster manager.

A backend is one small class per kind of cluster (`local`, `gateway`, `kubernetes`, `htcondor` and
`slurm`), instantiated once per template with that template's admin settings. It talks to the real
library (`LocalCluster`, `dask_gateway.Gateway`, the dask-kubernetes operator's resources,
dask-jobqueue) and never sees a user string: only `ClusterOptions` (validated numbers, admin-listed
environments).

Every cluster a backend starts itself speaks TLS with credentials of its own (`credentials`): the
base class makes them, names them in the connect code and removes them with the cluster.

The manager bounds every call in time and turns exceptions into API errors; backends raise
`BackendError` themselves where they can say more than the library's exception.
"""

import abc
import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from logging import Logger
from pathlib import Path
from typing import Any, ClassVar

from ..clusters import ClusterRecord, WorkerInfo, pending_workers, workers_from_identity
from ..connect import ConnectRecipe
from ..credentials import TlsFiles, remove_credentials, tls_client_recipe, write_credentials
from ..errors import BackendError
from ..options import ClusterOptions
from ..templates import Bounds, ClusterTemplate


@dataclass
class ClusterHandle:
    """A running cluster as its backend holds it.

    :param cluster: the library's cluster object; it has `scheduler_comm`, an rpc to the scheduler.
    :param name: the backend's own name of the cluster (gateway cluster name, Kubernetes resource).
    :param state: what the backend needs to reattach or clean up after a restart (JSON, persisted).
    :param tls: the cluster's credentials on this server, which its clients present (None: the
        backend's library brings its own, as dask-gateway does).
    """

    cluster: Any
    name: str
    scheduler_address: str
    dashboard_url: str | None = None
    state: dict = field(default_factory=dict)
    tls: TlsFiles | None = None


@dataclass(frozen=True)
class DiscoveredCluster:
    """A cluster of this user that the backend knows but this server does not manage (adoptable)."""

    name: str
    status: str
    dashboard_url: str | None = None


class ClusterBackend(abc.ABC):
    """One kind of cluster. Subclasses set `name` and implement the abstract methods."""

    #: the `backend` value of templates using this class
    name: ClassVar[str]
    #: whether its clusters outlive the server and are reattached after a restart (else they are reaped)
    reattachable: ClassVar[bool] = False
    #: JSON Schema of the template's admin-only `backend_settings`
    settings_schema: ClassVar[dict] = {"type": "object", "properties": {}, "additionalProperties": False}

    def __init__(
        self,
        template: ClusterTemplate,
        *,
        base_url: str,
        log: Logger,
        clusters_directory: Path,
        save_state: Callable[[str, dict], None] = lambda cluster_id, state: None,
    ):
        """:param clusters_directory: where each cluster gets a folder of its own on this server, for
            its TLS credentials and what else it keeps there (`ClusterManager.clusters_directory`).
        :param save_state: `save_state(cluster_id, backend_state)` writes the cluster's record to disk
            at once; batch backends call it with every job id the moment it is known."""
        self.template = template
        self.settings = template.backend_settings
        self.base_url = base_url
        self.log = log
        self.clusters_directory = clusters_directory
        self.save_state = save_state

    async def prepare(self):
        """Called once when the manager starts, in the background: warm up what the first cluster needs."""

    async def option_bounds(self) -> dict[str, Bounds]:
        """Bounds the backend itself puts on options (the gateway's own specification); none by default."""
        return {}

    @abc.abstractmethod
    async def create(self, cluster_id: str, options: ClusterOptions) -> ClusterHandle:
        """Start a cluster without workers: return once its scheduler answers (`size` asks for workers)."""

    async def size(self, handle: ClusterHandle, options: ClusterOptions):
        """Ask a new cluster for its first workers: adaptive between the options' bounds, or a fixed number."""
        if options.adaptive:
            await self.adapt(handle, options.adapt_minimum, options.adapt_maximum)
        else:
            await self.scale(handle, options.workers)

    @abc.abstractmethod
    async def scale(self, handle: ClusterHandle, workers: int):
        """Ask for exactly `workers` workers (ends adaptive scaling)."""

    @abc.abstractmethod
    async def adapt(self, handle: ClusterHandle, minimum: int, maximum: int):
        """Let the cluster scale itself between `minimum` and `maximum` workers."""

    @abc.abstractmethod
    async def close(self, handle: ClusterHandle):
        """Shut the cluster down, leaving nothing running."""

    @abc.abstractmethod
    async def reattach(self, record: ClusterRecord) -> ClusterHandle | None:
        """After a server restart: the cluster again, or None once whatever was left of it is cleaned up."""

    async def release(self, handle: ClusterHandle):
        """The server stops: let go of a reattachable cluster without shutting it down."""
        await self.close(handle)

    async def shutdown(self):
        """The server stops: release what the backend itself holds (connections, sessions)."""

    async def discover(self) -> list[DiscoveredCluster]:
        """Clusters of this user the backend runs that were made elsewhere (e.g. in notebook code)."""
        return []

    async def adopt(self, name: str) -> ClusterHandle:
        """Take over the discovered cluster `name`."""
        raise NotImplementedError(f"the {self.name} backend cannot adopt clusters")

    def explain(self, error: Exception) -> BackendError | None:
        """What a failure of the backend's library means and what to do about it, for people;
        None reports the library's own message (and logs its traceback)."""
        return None

    def backend_state(self, handle: ClusterHandle) -> dict:
        """What to persist for reattaching or cleaning up after a restart; read after every refresh."""
        return handle.state

    def requested_workers(self, handle: ClusterHandle, requested: int) -> int:
        """How many workers the cluster is after now; `requested` is the last fixed size asked for."""
        return requested

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        """Every worker with its state: connected ones from the scheduler, the rest as pending.

        Batch backends override this to report each job's queue state. Raises `ClusterGone` once
        the cluster ended on its own.
        """
        identity = await handle.cluster.scheduler_comm.identity()
        connected = workers_from_identity(identity)
        return connected + pending_workers(self.requested_workers(handle, requested), len(connected))

    async def logs(self, handle: ClusterHandle) -> dict[str, str]:
        """Recent log lines of the scheduler and of each worker, by source."""
        comm = handle.cluster.scheduler_comm
        logs = {"scheduler": "\n".join(line for _, line in await comm.get_logs())}
        for address, lines in (await comm.worker_logs()).items():
            logs[address] = "\n".join(line for _, line in lines)
        return logs

    def connect_recipe(self, handle: ClusterHandle) -> ConnectRecipe:
        """How a notebook's client connects to the cluster: to the scheduler, with its credentials."""
        return tls_client_recipe(handle.scheduler_address, handle.tls)

    def cluster_directory(self, cluster_id: str) -> Path:
        """The folder of cluster `cluster_id` on this server: its credentials (batch backends: where
        their jobs read them), local workers' spill space."""
        return self.clusters_directory / cluster_id

    async def new_credentials(self, cluster_id: str) -> TlsFiles:
        """Make the TLS credentials of a new cluster in its folder, readable by this account only."""
        return await asyncio.to_thread(write_credentials, self.cluster_directory(cluster_id))

    async def remove_cluster_directory(self, cluster_id: str):
        """Delete a cluster's folder, credentials included: the cluster is shut down or reaped."""
        await asyncio.to_thread(remove_credentials, self.cluster_directory(cluster_id))
