"""`kubernetes`: clusters run by the dask-kubernetes operator, through its `KubeCluster`.

`make_dask_cluster` builds the `DaskCluster` resource (pure; the tests validate it against the
operator's CRD schema, which ships in the dask-kubernetes package) from the operator's own
`make_cluster_spec`, with what that leaves out: namespace, labels, `dask scheduler`/`dask worker`
(distributed 2026 has no `dask-scheduler` script), threads and memory per worker, GPUs. The image is
an admin-listed environment, every other value a validated number. Clusters outlive the Jupyter
server and are reattached by name after a restart.

The dashboard is served through jupyter-server-proxy at `<base_url>proxy/<name>-scheduler.<namespace>:8787/status`;
admins allow those hosts with `c.ServerProxy.host_allowlist`.
"""

from collections.abc import Mapping
from typing import ClassVar

import kr8s.asyncio
from dask_kubernetes.operator import KubeCluster, make_cluster_spec
from dask_kubernetes.operator.kubecluster.kubecluster import CreateMode
from jupyter_server.utils import url_path_join

from ..clusters import ClusterRecord, WorkerInfo
from ..errors import BackendError, ClusterGone
from ..options import ClusterOptions
from .base import ClusterBackend, ClusterHandle

NAME_PREFIX = "sciencelab-"
DEFAULT_WORKER_COMMAND = ["dask", "worker"]
SCHEDULER_ARGS = ["dask", "scheduler", "--host", "0.0.0.0"]
DASHBOARD_PORT = 8787


def cluster_name(cluster_id: str) -> str:
    """The `DaskCluster` name of a cluster: ours are told apart by the prefix (RFC 1123, lower-case hex id)."""
    return f"{NAME_PREFIX}{cluster_id}"


def make_dask_cluster(cluster_id: str, options: ClusterOptions, settings: Mapping) -> dict:
    """The `DaskCluster` resource for a cluster (pure).

    :param options: validated options; the worker image is the environment's admin-set value.
    :param settings: the template's admin-only `backend_settings` (namespace, service type,
        worker command, environment variables, GPU resource name).
    """
    name = cluster_name(cluster_id)
    memory = f"{options.memory_bytes // 2**20}Mi"
    limits = {"cpu": str(options.cores), "memory": memory}
    if options.gpus:
        limits[settings.get("gpu_resource", "nvidia.com/gpu")] = str(options.gpus)
    env = [{"name": key, "value": value} for key, value in sorted(settings.get("env", {}).items())]
    worker_command = [
        *settings.get("worker_command", DEFAULT_WORKER_COMMAND),
        "--nthreads",
        str(options.cores),
        "--memory-limit",
        str(options.memory_bytes),
    ]
    resource = make_cluster_spec(
        name=name,
        image=options.environment.value,
        n_workers=options.adapt_minimum if options.adaptive else options.workers,
        resources={"requests": {"cpu": str(options.cores), "memory": memory}, "limits": limits},
        env=env,
        worker_command=worker_command,
        scheduler_service_type=settings.get("scheduler_service_type", "ClusterIP"),
        idle_timeout=int(options.idle_timeout * 60),
    )
    resource["metadata"] = {
        "name": name,
        "namespace": settings["namespace"],
        "labels": {"app.kubernetes.io/managed-by": "sciencelab", "sciencelab.org/cluster-id": cluster_id},
    }
    scheduler = resource["spec"]["scheduler"]["spec"]["containers"][0]
    scheduler["args"] = list(SCHEDULER_ARGS)
    # The scheduler needs neither the workers' GPUs nor their memory.
    scheduler["resources"] = dict(settings.get("scheduler_resources", {}))
    return resource


class KubernetesBackend(ClusterBackend):
    """Clusters of the dask-kubernetes operator in the template's namespace."""

    name = "kubernetes"
    reattachable = True
    settings_schema: ClassVar[dict] = {
        "type": "object",
        "required": ["namespace"],
        "properties": {
            "namespace": {"type": "string", "description": "Namespace of the user's clusters."},
            "scheduler_service_type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
            "worker_command": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Command starting a worker (default: dask worker).",
            },
            "env": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Environment variables of schedulers and workers.",
            },
            "gpu_resource": {"type": "string", "description": "Extended resource of a GPU (nvidia.com/gpu)."},
            "scheduler_resources": {"type": "object", "description": "Requests and limits of the scheduler container."},
            "resource_timeout": {
                "type": "integer",
                "minimum": 1,
                "description": "Seconds the operator may take to start a scheduler (60).",
            },
            "port_forward": {
                "type": "boolean",
                "description": "Port-forward to the scheduler: for servers outside the cluster.",
            },
        },
        "additionalProperties": False,
    }

    async def create(self, cluster_id: str, options: ClusterOptions) -> ClusterHandle:
        resource = make_dask_cluster(cluster_id, options, self.settings)
        namespace, timeout = self.settings["namespace"], self.settings.get("resource_timeout", 60)
        try:
            cluster = await KubeCluster(
                custom_cluster_spec=resource,
                namespace=namespace,
                shutdown_on_close=True,  # a cluster that fails to start is deleted again
                resource_timeout=timeout,
                port_forward_cluster_ip=self.settings.get("port_forward", False),
                asynchronous=True,
                quiet=True,
            )
        except TimeoutError:
            raise BackendError(
                f"the dask-kubernetes operator did not start DaskCluster {resource['metadata']['name']} "
                f"in namespace {namespace} within {timeout} s; is the operator running and watching "
                "that namespace?",
                unavailable=True,
            ) from None
        handle = self._handle(cluster)
        if options.adaptive:
            await self.adapt(handle, options.adapt_minimum, options.adapt_maximum)
        return handle

    async def scale(self, handle: ClusterHandle, workers: int):
        await handle.cluster.scale(workers)

    async def adapt(self, handle: ClusterHandle, minimum: int, maximum: int):
        await handle.cluster.adapt(minimum=minimum, maximum=maximum)

    async def close(self, handle: ClusterHandle):
        handle.cluster.shutdown_on_close = True
        await handle.cluster.close()

    async def release(self, handle: ClusterHandle):
        handle.cluster.shutdown_on_close = False
        await handle.cluster.close()

    async def reattach(self, record: ClusterRecord) -> ClusterHandle | None:
        name = cluster_name(record.id)
        try:
            cluster = await KubeCluster(
                name=name,
                namespace=self.settings["namespace"],
                create_mode=CreateMode.CONNECT_ONLY,
                shutdown_on_close=False,
                resource_timeout=self.settings.get("resource_timeout", 60),
                port_forward_cluster_ip=self.settings.get("port_forward", False),
                asynchronous=True,
                quiet=True,
            )
        except ValueError:  # "doesn't already exist": deleted meanwhile (idle timeout, kubectl)
            return None
        return self._handle(cluster)

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        try:
            return await super().workers(handle, requested)
        except OSError:
            # The scheduler is unreachable: gone with its DaskCluster (idle timeout, deleted), or a network fault.
            if await kr8s.asyncio.get("daskclusters", handle.name, namespace=self.settings["namespace"]):
                raise
            raise ClusterGone(f"the DaskCluster {handle.name} is gone (idle timeout or deleted)") from None

    def _handle(self, cluster: KubeCluster) -> ClusterHandle:
        namespace = self.settings["namespace"]
        dashboard = url_path_join(
            self.base_url, "proxy", f"{cluster.name}-scheduler.{namespace}:{DASHBOARD_PORT}", "status"
        )
        return ClusterHandle(
            cluster=cluster,
            name=cluster.name,
            scheduler_address=cluster.scheduler_address,
            dashboard_url=dashboard,
            state={"name": cluster.name, "namespace": namespace},
        )
