"""`kubernetes`: clusters run by the dask-kubernetes operator, through its custom resources.

`make_dask_cluster` builds the `DaskCluster` resource (pure; the tests validate it against the
operator's CRD schema, which ships in the dask-kubernetes package) from the operator's own
`make_cluster_spec`, with what that leaves out: namespace, labels, `dask scheduler`/`dask worker`
(distributed 2026 has no `dask-scheduler` script), threads and memory per worker, GPUs, and TLS. The
image is an admin-listed environment, every other value a validated number.

Every cluster speaks TLS with a certificate of its own: `make_tls_secret` puts it into a Secret that
the scheduler and worker pods mount, the scheduler requires it of every peer, and this server and
the notebook's client present the copy in the cluster's folder here. The operator's `KubeCluster`
cannot connect to a TLS scheduler, so this backend drives the operator's resources itself (kr8s):
it creates the Secret and the `DaskCluster`, scales by the cluster's `spec.worker.replicas`, adapts
with a `DaskAutoscaler`, and deletes them. The scheduler's HTTP API is switched on, so the operator
retires workers and reads the adaptive target over HTTP, as it prefers, rather than over a Dask
connection it could not open without the certificate. Clusters outlive the Jupyter server and are
reattached by name after a restart.

The dashboard is served through jupyter-server-proxy at `<base_url>proxy/<name>-scheduler.<namespace>:8787/status`;
admins allow those hosts with `c.ServerProxy.host_allowlist`. The server's service account needs to
create and delete Secrets, `daskclusters` and `daskautoscalers` in the namespace.
"""

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dask_kubernetes.operator import make_cluster_spec
from distributed.core import rpc
from jupyter_server.utils import url_path_join
from kr8s import NotFoundError
from kr8s.asyncio.objects import Secret, Service, new_class

from ..clusters import ClusterRecord, WorkerInfo
from ..credentials import CERT_FILE, KEY_FILE, TlsFiles, make_security
from ..errors import BackendError, ClusterGone
from ..options import ClusterOptions
from .base import ClusterBackend, ClusterHandle

NAME_PREFIX = "sciencelab-"
DEFAULT_WORKER_COMMAND = ["dask", "worker"]
SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787
# Where the scheduler and worker pods mount their cluster's certificate.
TLS_MOUNT = "/etc/sciencelab/dask-tls"
TLS_VOLUME = "dask-tls"
# distributed's default scheduler routes, and its HTTP API, which the operator calls for scaling.
SCHEDULER_HTTP_ROUTES = [
    "distributed.http.scheduler.prometheus",
    "distributed.http.scheduler.info",
    "distributed.http.scheduler.json",
    "distributed.http.health",
    "distributed.http.proxy",
    "distributed.http.statics",
    "distributed.http.scheduler.api",
]
# Seconds between two looks for the scheduler while a cluster starts.
POLL_INTERVAL = 0.5

DaskCluster = new_class("DaskCluster", "kubernetes.dask.org/v1", namespaced=True)
DaskAutoscaler = new_class("DaskAutoscaler", "kubernetes.dask.org/v1", namespaced=True)


def cluster_name(cluster_id: str) -> str:
    """The `DaskCluster` name of a cluster: ours are told apart by the prefix (RFC 1123, lower-case hex id)."""
    return f"{NAME_PREFIX}{cluster_id}"


def secret_name(cluster_id: str) -> str:
    """The Secret holding a cluster's certificate and key."""
    return f"{cluster_name(cluster_id)}-tls"


def scheduler_service(cluster_id: str) -> str:
    """The Service the operator makes for a cluster's scheduler."""
    return f"{cluster_name(cluster_id)}-scheduler"


def make_labels(cluster_id: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "sciencelab", "sciencelab.org/cluster-id": cluster_id}


def make_tls_secret(cluster_id: str, namespace: str, cert: str, key: str) -> dict:
    """The Secret with a cluster's certificate and key, which its scheduler and worker pods mount (pure)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(cluster_id), "namespace": namespace, "labels": make_labels(cluster_id)},
        "type": "Opaque",
        "stringData": {CERT_FILE: cert, KEY_FILE: key},
    }


def _tls_args(files: TlsFiles) -> list[str]:
    return ["--tls-ca-file", files.cert, "--tls-cert", files.cert, "--tls-key", files.key]


def make_dask_cluster(cluster_id: str, options: ClusterOptions, settings: Mapping) -> dict:
    """The `DaskCluster` resource for a cluster (pure).

    :param options: validated options; the worker image is the environment's admin-set value.
    :param settings: the template's admin-only `backend_settings` (namespace, service type,
        worker command, environment variables, GPU resource name).
    """
    name = cluster_name(cluster_id)
    namespace = settings["namespace"]
    mounted = TlsFiles(cert=f"{TLS_MOUNT}/{CERT_FILE}", key=f"{TLS_MOUNT}/{KEY_FILE}")
    memory = f"{options.memory_bytes // 2**20}Mi"
    limits = {"cpu": str(options.cores), "memory": memory}
    if options.gpus:
        limits[settings.get("gpu_resource", "nvidia.com/gpu")] = str(options.gpus)
    env = [{"name": key, "value": value} for key, value in sorted(settings.get("env", {}).items())]
    tls_env = [{"name": "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION", "value": "True"}]
    worker_command = [
        *settings.get("worker_command", DEFAULT_WORKER_COMMAND),
        "--nthreads",
        str(options.cores),
        "--memory-limit",
        str(options.memory_bytes),
        *_tls_args(mounted),
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
    resource["metadata"] = {"name": name, "namespace": namespace, "labels": make_labels(cluster_id)}
    volume = {"name": TLS_VOLUME, "secret": {"secretName": secret_name(cluster_id), "defaultMode": 0o400}}
    mount = {"name": TLS_VOLUME, "mountPath": TLS_MOUNT, "readOnly": True}
    for role in ("scheduler", "worker"):
        pod = resource["spec"][role]["spec"]
        pod["volumes"] = [volume]
        pod["containers"][0]["volumeMounts"] = [mount]
    scheduler = resource["spec"]["scheduler"]["spec"]["containers"][0]
    scheduler["args"] = ["dask", "scheduler", "--host", "0.0.0.0", "--protocol", "tls", *_tls_args(mounted)]
    routes = {"name": "DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES", "value": repr(SCHEDULER_HTTP_ROUTES)}
    scheduler["env"] = [*env, *tls_env, routes]
    # The scheduler needs neither the workers' GPUs nor their memory.
    scheduler["resources"] = dict(settings.get("scheduler_resources", {}))
    worker = resource["spec"]["worker"]["spec"]["containers"][0]
    # The operator would tell workers a tcp:// address; this one says tls://.
    address = f"tls://{scheduler_service(cluster_id)}.{namespace}.svc.cluster.local:{SCHEDULER_PORT}"
    worker["env"] = [*env, *tls_env, {"name": "DASK_SCHEDULER_ADDRESS", "value": address}]
    return resource


def make_autoscaler(cluster_id: str, namespace: str, minimum: int, maximum: int) -> dict:
    """The `DaskAutoscaler` that lets the operator scale a cluster between `minimum` and `maximum` (pure)."""
    name = cluster_name(cluster_id)
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "labels": make_labels(cluster_id)},
        "spec": {"cluster": name, "minimum": minimum, "maximum": maximum},
    }


@dataclass
class OperatorCluster:
    """A cluster of the operator as this server holds it: the rpc to its scheduler, and a port-forward."""

    scheduler_comm: rpc
    port_forward: object = None

    async def close(self):
        await self.scheduler_comm.close_rpc()
        if self.port_forward is not None:
            await self.port_forward.stop()


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

    @property
    def namespace(self) -> str:
        return self.settings["namespace"]

    async def create(self, cluster_id: str, options: ClusterOptions) -> ClusterHandle:
        tls = await self.new_credentials(cluster_id)
        cert, key = await asyncio.to_thread(lambda: (Path(tls.cert).read_text(), Path(tls.key).read_text()))
        resource = make_dask_cluster(cluster_id, options, self.settings)
        try:
            await (await Secret(make_tls_secret(cluster_id, self.namespace, cert, key))).create()
            await (await DaskCluster(resource)).create()
            return await self._connect(cluster_id, tls, self.settings.get("resource_timeout", 60))
        except BaseException:
            # Refused, timed out or cancelled half-way: what was created goes, even if we are cancelled.
            await asyncio.shield(self._delete(cluster_id))
            raise

    async def scale(self, handle: ClusterHandle, workers: int):
        await self._stop_adapting(handle.state["id"])
        cluster = await DaskCluster(handle.name, namespace=self.namespace)
        await cluster.patch({"spec": {"worker": {"replicas": workers}}})

    async def adapt(self, handle: ClusterHandle, minimum: int, maximum: int):
        await self._stop_adapting(handle.state["id"])
        await (await DaskAutoscaler(make_autoscaler(handle.state["id"], self.namespace, minimum, maximum))).create()

    async def close(self, handle: ClusterHandle):
        await handle.cluster.close()
        await self._delete(handle.state["id"])

    async def release(self, handle: ClusterHandle):
        await handle.cluster.close()

    async def reattach(self, record: ClusterRecord) -> ClusterHandle | None:
        tls = TlsFiles(
            cert=str(self.cluster_directory(record.id) / CERT_FILE),
            key=str(self.cluster_directory(record.id) / KEY_FILE),
        )
        exists = await self._exists(cluster_name(record.id))
        if exists and Path(tls.cert).exists():
            return await self._connect(record.id, tls, self.settings.get("resource_timeout", 60))
        # Deleted meanwhile (idle timeout, kubectl), or nobody could reach it without its certificate.
        await self._delete(record.id)
        return None

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        try:
            return await super().workers(handle, requested)
        except OSError:
            # The scheduler is unreachable: gone with its DaskCluster (idle timeout, deleted), or a network fault.
            if await self._exists(handle.name):
                raise
            raise ClusterGone(f"the DaskCluster {handle.name} is gone (idle timeout or deleted)") from None

    async def _connect(self, cluster_id: str, tls: TlsFiles, timeout: float) -> ClusterHandle:
        """Wait for the operator's scheduler Service, then for the scheduler to answer over TLS."""
        name, service_name = cluster_name(cluster_id), scheduler_service(cluster_id)
        deadline = time.monotonic() + timeout
        service = await Service(service_name, namespace=self.namespace)
        while not await service.exists():
            if time.monotonic() > deadline:
                raise BackendError(
                    f"the dask-kubernetes operator did not start DaskCluster {name} in namespace {self.namespace} "
                    f"within {timeout:g} s; is the operator running and watching that namespace?",
                    unavailable=True,
                )
            await asyncio.sleep(POLL_INTERVAL)
        port_forward = None
        address = f"tls://{service_name}.{self.namespace}:{SCHEDULER_PORT}"
        if self.settings.get("port_forward"):
            port_forward = service.portforward(SCHEDULER_PORT, local_port="auto")
            address = f"tls://127.0.0.1:{await port_forward.start()}"
        comm = rpc(address, connection_args=make_security(tls).get_connection_args("client"))
        while True:  # the pod may still be pulling its image: the manager bounds the wait (start_timeout)
            try:
                await comm.identity()
                break
            except OSError:
                await asyncio.sleep(POLL_INTERVAL)
        dashboard = url_path_join(self.base_url, "proxy", f"{service_name}.{self.namespace}:{DASHBOARD_PORT}", "status")
        return ClusterHandle(
            cluster=OperatorCluster(comm, port_forward),
            name=name,
            scheduler_address=f"tls://{service_name}.{self.namespace}:{SCHEDULER_PORT}",
            dashboard_url=dashboard,
            state={"id": cluster_id, "name": name, "namespace": self.namespace},
            tls=tls,
        )

    async def _exists(self, name: str) -> bool:
        return await (await DaskCluster(name, namespace=self.namespace)).exists()

    async def _stop_adapting(self, cluster_id: str):
        with contextlib.suppress(NotFoundError):
            await (await DaskAutoscaler(cluster_name(cluster_id), namespace=self.namespace)).delete()

    async def _delete(self, cluster_id: str):
        """Delete the cluster's resources (the operator removes its pods and Services) and its folder here."""
        for kind, name in (
            (DaskAutoscaler, cluster_name(cluster_id)),
            (DaskCluster, cluster_name(cluster_id)),
            (Secret, secret_name(cluster_id)),
        ):
            with contextlib.suppress(NotFoundError):
                await (await kind(name, namespace=self.namespace)).delete()
        await self.remove_cluster_directory(cluster_id)
