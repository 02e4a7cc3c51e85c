"""`gateway`: clusters of a dask-gateway server, through `dask_gateway.Gateway`.

The gateway publishes its own option specification (`/api/v1/options`); the template maps our
options to its fields (`backend_settings.options`, e.g. `cores: worker_cores`) and the bounds a user
sees are the template's narrowed by the gateway's. Authentication is the gateway client's own:
`jupyterhub` (the server's `JUPYTERHUB_API_TOKEN`) under a hub, else `basic` as the server's
account. Clusters outlive the Jupyter server and are reattached by name after a restart; the
user's clusters made elsewhere (in notebook code) are listed and can be adopted.

Every gateway cluster already speaks TLS with credentials of its own, which the gateway makes and
hands only to the authenticated user: the connect code asks the gateway for them
(`gateway.connect(name)`), so nothing secret is written into the notebook or onto this server.
"""

import asyncio
import os
import time
from collections.abc import Mapping
from typing import ClassVar

from aiohttp import ClientResponseError
from dask_gateway import Gateway
from dask_gateway.client import ClusterStatus

from ...compat.gateway import option_fields
from ..clusters import ClusterRecord, WorkerInfo
from ..connect import Call, ConnectRecipe
from ..errors import BackendError, ClusterGone
from ..options import ClusterOptions
from ..templates import Bounds
from .base import ClusterBackend, ClusterHandle, DiscoveredCluster

# Our options a template may map to gateway option fields (memory in GiB, idle_timeout in minutes,
# as the gateway's own options handler must then read them).
MAPPABLE_OPTIONS = ("cores", "memory", "gpus", "idle_timeout", "environment")
RUNNING = (ClusterStatus.PENDING, ClusterStatus.RUNNING)
# Seconds the gateway's option specification is reused: it is read for every form and request.
OPTIONS_CACHE_SECONDS = 30


def gateway_bounds(fields: Mapping[str, Mapping], option_names: Mapping[str, str]) -> dict[str, Bounds]:
    """The bounds the gateway itself puts on our numeric options (pure).

    :param fields: gateway field name -> `{"default", "min", "max"}` (its option specification).
    :param option_names: our option -> the gateway field it maps to (`backend_settings.options`).
    """
    bounds = {}
    for ours, theirs in option_names.items():
        field = fields.get(theirs)
        if ours == "environment" or field is None or field.get("min") is None or field.get("max") is None:
            continue
        bounds[ours] = Bounds(default=field["default"], minimum=field["min"], maximum=field["max"])
    return bounds


def make_gateway_options(options: ClusterOptions, option_names: Mapping[str, str], fixed: Mapping) -> dict:
    """The gateway option values for a cluster (pure): the admin's fixed values, then the mapped options.

    Only validated numbers and the value of an admin-listed environment reach the gateway.
    """
    values = dict(fixed)
    for ours, theirs in option_names.items():
        values[theirs] = options.environment.value if ours == "environment" else getattr(options, ours)
    return values


class GatewayBackend(ClusterBackend):
    """Clusters of a dask-gateway server."""

    name = "gateway"
    reattachable = True
    settings_schema: ClassVar[dict] = {
        "type": "object",
        "required": ["address"],
        "properties": {
            "address": {"type": "string", "description": "The gateway's URL, e.g. http://gateway:8000."},
            "proxy_address": {
                "type": "string",
                "description": "Its scheduler proxy, gateway://host:port, when it has its own port.",
            },
            "public_address": {"type": "string", "description": "Its URL as browsers reach it (dashboards)."},
            "auth": {
                "enum": ["jupyterhub", "basic", "kerberos"],
                "description": "dask-gateway client authentication; default jupyterhub under a hub, else basic.",
            },
            "options": {
                "type": "object",
                "description": "Our option -> the gateway option field that receives it.",
                "properties": {name: {"type": "string"} for name in MAPPABLE_OPTIONS},
                "additionalProperties": False,
            },
            "fixed_options": {
                "type": "object",
                "description": "Gateway option fields the admin sets for every cluster of the template.",
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            },
        },
        "additionalProperties": False,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.option_names = dict(self.settings.get("options", {}))
        self.auth = self.settings.get("auth", "jupyterhub" if os.environ.get("JUPYTERHUB_API_TOKEN") else "basic")
        self._gateway: Gateway | None = None
        self._fields_cache: tuple[float, dict] | None = None
        self._cleanups: set[asyncio.Task] = set()

    @property
    def gateway(self) -> Gateway:
        # Created on first use: in asynchronous mode the client binds to the running event loop.
        if self._gateway is None:
            self._gateway = Gateway(
                address=self.settings["address"],
                proxy_address=self.settings.get("proxy_address"),
                public_address=self.settings.get("public_address"),
                auth=self.auth,
                asynchronous=True,
            )
        return self._gateway

    async def option_bounds(self) -> dict[str, Bounds]:
        return gateway_bounds(await self._fields(), self.option_names)

    async def create(self, cluster_id: str, options: ClusterOptions) -> ClusterHandle:
        cluster_options = await self.gateway.cluster_options(use_local_defaults=False)
        values = make_gateway_options(options, self.option_names, self.settings.get("fixed_options", {}))
        for field, value in values.items():
            try:
                cluster_options[field] = value
            except (KeyError, TypeError, ValueError) as error:
                raise BackendError(
                    f"the gateway at {self.settings['address']} refused option {field}={value!r}: "
                    f"{error}; check the template's backend_settings"
                ) from error
        name = await self.gateway.submit(cluster_options)
        try:
            return await self._connect(name)
        except BaseException:
            # Timed out or refused half-way: stop what the gateway started, even if we are cancelled.
            cleanup = asyncio.ensure_future(self.gateway.stop_cluster(name))
            self._cleanups.add(cleanup)  # the loop keeps only a weak reference to a task
            cleanup.add_done_callback(self._cleanups.discard)
            raise

    async def scale(self, handle: ClusterHandle, workers: int):
        await self.gateway.scale_cluster(handle.name, workers)

    async def adapt(self, handle: ClusterHandle, minimum: int, maximum: int):
        await self.gateway.adapt_cluster(handle.name, minimum=minimum, maximum=maximum)

    async def close(self, handle: ClusterHandle):
        await self.gateway.stop_cluster(handle.name)
        await handle.cluster.close(shutdown=False)

    async def release(self, handle: ClusterHandle):
        await handle.cluster.close(shutdown=False)

    async def reattach(self, record: ClusterRecord) -> ClusterHandle | None:
        name = record.backend_state.get("cluster_name")
        if name is None:
            return None  # the server stopped before the gateway named it; `discover` lists it for adoption
        try:
            report = await self.gateway.get_cluster(name)
        except ValueError:  # the gateway answers 404: it forgot the cluster
            return None
        if report.status not in RUNNING:
            return None
        return await self._connect(name)

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        try:
            return await super().workers(handle, requested)
        except OSError:
            # The scheduler is unreachable: ended (idle timeout, stopped elsewhere) or the network is down.
            try:
                report = await self.gateway.get_cluster(handle.name)
            except ValueError:
                raise ClusterGone(f"the gateway no longer knows {handle.name}") from None
            if report.status not in RUNNING:
                raise ClusterGone(f"the gateway reports {handle.name} {report.status.name.lower()}") from None
            raise

    async def discover(self) -> list[DiscoveredCluster]:
        return [
            DiscoveredCluster(name=report.name, status=report.status.name.lower(), dashboard_url=report.dashboard_link)
            for report in await self.gateway.list_clusters()
        ]

    async def adopt(self, name: str) -> ClusterHandle:
        return await self._connect(name)

    async def shutdown(self):
        if self._gateway is not None:
            await self._gateway.close()

    def explain(self, error: Exception) -> BackendError | None:
        if not isinstance(error, ClientResponseError) or error.status not in (401, 403):
            return None
        if self.auth == "jupyterhub":
            # JupyterHub 4+ gives a server's token only the `server` role unless told otherwise, and
            # dask-gateway's JupyterHubAuthenticator wants access to its service.
            hint = (
                "this server's JupyterHub token (JUPYTERHUB_API_TOKEN) needs the scope "
                "access:services!service=<the gateway's JupyterHub service name>: the hub grants it with "
                "configure_sciencelab(c, server_services=[...]) or Spawner.server_token_scopes"
            )
        else:
            hint = "check the template's backend_settings.auth"
        return BackendError(
            f"the gateway at {self.settings['address']} refused this server's {self.auth} "
            f"credentials ({error.status} {error.message}); {hint}"
        )

    def connect_recipe(self, handle: ClusterHandle) -> ConnectRecipe:
        gateway_kwargs = (("proxy_address", self.gateway.proxy_address), ("auth", self.auth))
        if self.settings.get("public_address"):
            gateway_kwargs += (("public_address", self.settings["public_address"]),)
        return ConnectRecipe(
            "dask_gateway",
            "Gateway",
            (
                Call("gateway", "Gateway", (self.settings["address"],), gateway_kwargs),
                Call("cluster", "gateway.connect", (handle.name,)),
                Call("client", "cluster.get_client"),
            ),
        )

    async def _connect(self, name: str) -> ClusterHandle:
        cluster = await self.gateway.connect(name)
        return ClusterHandle(
            cluster=cluster,
            name=name,
            scheduler_address=cluster.scheduler_address,
            dashboard_url=cluster.dashboard_link,
            state={"cluster_name": name},
        )

    async def _fields(self) -> dict[str, dict]:
        if self._fields_cache is None or time.monotonic() - self._fields_cache[0] > OPTIONS_CACHE_SECONDS:
            options = await self.gateway.cluster_options(use_local_defaults=False)
            self._fields_cache = (time.monotonic(), option_fields(options))
        return self._fields_cache[1]
