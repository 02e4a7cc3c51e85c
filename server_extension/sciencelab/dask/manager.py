"""The cluster manager: templates, the user's clusters, their records on disk and their live state.

One `ClusterManager` per Jupyter server, kept in the tornado settings. It does the I/O (reading the
Dask configuration, calling backends, persisting records, pushing updates to WebSocket subscribers)
and leaves every decision to the pure modules: `templates`, `options`, `limits`, `clusters`, `connect`.
"""

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import dask.config
import psutil
from jupyter_core.paths import jupyter_data_dir
from traitlets import Dict, Enum, Float, Unicode, default
from traitlets.config import LoggingConfigurable

from ..request_json import cut, shown
from .backends import BACKENDS, BackendUnavailable, ClusterBackend, ClusterHandle, DiscoveredCluster, load_backend
from .clusters import ClusterRecord, ClusterView, make_cluster_json, make_discovered_json
from .connect import make_connect_code
from .errors import BackendError, ClusterError, ClusterGone, NotAllowedError, NotFoundError, OptionError
from .interpreters import locate_interpreter, locate_kernel_interpreters
from .limits import Usage, check_limits, make_local_limits, resolve_limits
from .options import make_option_schema, validate_options, validate_scaling
from .templates import (
    ClusterTemplate,
    Interpreter,
    TemplateError,
    local_environments,
    make_default_templates,
    make_limits,
    make_machine_resources,
    make_templates,
)

#: Set by the ScienceLab spawners for profiles with `dask_config` (written down where it is produced:
#: `sciencelab_spawner/profile_record.py`): a Dask-config YAML file with this profile's
#: `sciencelab.clusters` section. It has priority over the Dask config files and below `DASK_` variables.
HUB_CONFIG_FILE_ENV = "SCIENCELAB_DASK_CONFIG_FILE"
CONFIG_KEY = "sciencelab.clusters"


@dataclass
class ManagedCluster:
    """A cluster this server manages: its record, the backend's handle once started, its last state."""

    record: ClusterRecord
    backend: ClusterBackend
    handle: ClusterHandle | None = None
    view: ClusterView = field(default_factory=lambda: ClusterView(status="starting"))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ClusterManager(LoggingConfigurable):
    """Creates, scales, lists and shuts down the Dask clusters of this server's users."""

    templates = Dict(
        config=True,
        help="""Cluster templates, by name, merged over those of the Dask configuration
        (`sciencelab.clusters.templates`). Default: none, in which case one `local` template sized
        to the server's CPU and memory limits is offered. Example::

            c.ClusterManager.templates = {"small": {"backend": "local", "title": "Small",
                "options": {"workers": {"default": 2, "minimum": 1, "maximum": 4}}}}
        """,
    )
    limits = Dict(
        config=True,
        help="""Limits per user and per JupyterHub group, merged over `sciencelab.clusters.limits` of the
        Dask configuration; a user's clusters together may not go above them (403 naming the limit).
        Counts: clusters, workers (the adaptive maximum when adaptive), cores (workers times cores per
        worker), memory (GiB: workers times memory per worker). Default: none, except that local
        clusters together may not ask for more cores and memory than this server has (its CPU and
        memory limits); `local` replaces that budget. Example::

            c.ClusterManager.limits = {"default": {"clusters": 2, "workers": 8, "cores": 16, "memory": 64},
                                       "groups": {"cms": {"workers": 200, "cores": 800}},
                                       "local": {"cores": 4, "memory": 8}}
        """,
    )
    state_file = Unicode(
        config=True,
        help="""JSON file where the records of this server's clusters are kept, so that a restarted
        server reattaches or cleans them up. Default: `<jupyter data dir>/sciencelab/dask-clusters-<name>.json`
        with the JupyterHub server name (`default` for the default server).""",
    )
    refresh_interval = Float(
        1.0,
        config=True,
        help="Seconds between two refreshes of the clusters' states pushed to the lab panels (default 1.0).",
    )
    start_timeout = Float(
        120.0,
        config=True,
        help="""Seconds a backend may take to start a cluster's scheduler (default 120) before the API
        answers 503 with what the backend said. Raise it for batch systems with slow queues.""",
    )
    request_timeout = Float(
        10.0,
        config=True,
        help="""Seconds a backend may take to answer any other request: scale, logs, state, shut down
        (default 10). Past it the API answers 503 rather than hang.""",
    )
    discovery_interval = Float(
        10.0,
        config=True,
        help="Seconds between two look-ups of clusters made outside this server, e.g. gateway clusters "
        "created in notebook code (default 10).",
    )
    clusters_directory = Unicode(
        config=True,
        help="""Folder where each cluster this server starts gets a folder of its own, readable by this
        account only: the cluster's TLS certificate and key, which its connect code names, and the
        spill space of local workers. Removed with the cluster. Batch templates keep theirs beside
        their job logs instead (`log_directory`), where the jobs read it. Default:
        `<jupyter data dir>/sciencelab/dask-clusters`. Example: "/scratch/alice/dask".""",
    )
    local_worker_start = Enum(
        ["forkserver", "spawn"],
        "forkserver",
        config=True,
        help="""How the worker processes of local clusters start, for every local template of this
        server (distributed reads one process-wide setting, `distributed.worker.multiprocessing-method`).
        "forkserver" (default) forks them from a process that has already imported what the server's
        Python needs, so they start in a fraction of a second; "spawn" starts a fresh interpreter for
        each, slower, for libraries that cannot be imported before a fork.""",
    )

    @default("state_file")
    def _default_state_file(self):
        server_name = os.environ.get("JUPYTERHUB_SERVER_NAME") or "default"
        return str(Path(jupyter_data_dir()) / "sciencelab" / f"dask-clusters-{server_name}.json")

    @default("clusters_directory")
    def _default_clusters_directory(self):
        return str(Path(jupyter_data_dir()) / "sciencelab" / "dask-clusters")

    def __init__(
        self,
        *,
        base_url: str = "/",
        kernel_specs: Mapping | None = None,
        environ: Mapping[str, str] | None = None,
        config_paths: Sequence[str] | None = None,
        **kwargs,
    ):
        """Load and check the templates; raise `TemplateError` naming file, template and field if one is broken.

        :param kernel_specs: the server's kernel specs (`KernelSpecManager.get_all_specs()`): their
            interpreters are the environments of `local` templates.
        :param config_paths: the Dask config search path (`dask.config.paths` by default).
        """
        super().__init__(**kwargs)
        self.base_url = base_url
        environ = os.environ if environ is None else environ
        self._server = {"pid": os.getpid(), "started": psutil.Process().create_time()}
        self.cluster_templates, self.limit_config = self._load_configuration(
            list(dask.config.paths if config_paths is None else config_paths), environ, kernel_specs or {}
        )
        # Process-wide: only this manager's local clusters start worker processes in this process.
        dask.config.set({"distributed.worker.multiprocessing-method": self.local_worker_start})
        self._backends: dict[str, ClusterBackend] = {}
        for template in self.cluster_templates.values():
            backend_class = load_backend(template.backend)
            self._backends[template.name] = backend_class(
                template,
                base_url=base_url,
                log=self.log,
                clusters_directory=Path(self.clusters_directory),
                save_state=self._save_backend_state,
            )
        self._clusters: dict[str, ManagedCluster] = {}
        self._foreign_records: list[dict] = []
        self._discovered: dict[str, list[DiscoveredCluster]] = {}
        self._discovered_at = 0.0
        self._subscribers: dict[int, tuple[str, Sequence[str], Callable[[list], None]]] = {}
        self._user_locks: dict[str, asyncio.Lock] = {}
        self._started: asyncio.Task | None = None
        self._preparing: list[asyncio.Task] = []
        self._refresher: asyncio.Task | None = None
        self._stopping = False

    # ---- configuration ------------------------------------------------------------------------

    def _load_configuration(self, paths: list[str], environ: Mapping[str, str], kernel_specs: Mapping):
        hub_file = environ.get(HUB_CONFIG_FILE_ENV)
        if hub_file and not Path(hub_file).is_file():
            raise TemplateError(f"{HUB_CONFIG_FILE_ENV}={hub_file}: no such file")
        sources = [*paths, hub_file] if hub_file else paths
        env = {key: value for key, value in environ.items() if key.startswith("DASK_")}
        try:
            section = dask.config.get(CONFIG_KEY, default={}, config=dask.config.collect(sources, env)) or {}
        except Exception as error:  # a YAML syntax error: dask names the file in its message
            raise TemplateError(f"the Dask configuration cannot be read: {error}") from error
        configured = section.get("templates") or {}
        if not isinstance(configured, Mapping):
            raise TemplateError(
                f"sciencelab.clusters.templates must map template names to templates, "
                f"got {type(configured).__name__}: {configured!r:.80}"
            )
        templates = {**configured, **self._merge_traitlet(configured)}
        origins = self._template_origins(sources, env, templates)
        machine = make_machine_resources(environ, psutil.cpu_count() or 1, psutil.virtual_memory().total)
        if not templates:
            templates = make_default_templates(machine)
            origins = {"local": "the built-in default"}
        # Only the backends templates use are imported: their libraries are optional.
        backend_schemas = {name: {} for name in BACKENDS}
        for name, template in templates.items():
            backend = template.get("backend") if isinstance(template, Mapping) else None
            if backend in BACKENDS:
                try:
                    backend_schemas[backend] = load_backend(backend).settings_schema
                except BackendUnavailable as error:
                    raise TemplateError(f"{origins.get(name)}: template '{name}': backend: {error}") from error
        # An embedded interpreter has no executable to find; its prefix is its software.
        server = locate_interpreter(sys.executable) or Interpreter(sys.executable, sys.prefix)
        environments = local_environments(kernel_specs, server, locate_kernel_interpreters(kernel_specs, server.path))
        cluster_templates = make_templates(templates, origins, backend_schemas, environments)
        limits = make_limits({**section.get("limits", {}), **self.limits}, "sciencelab.clusters.limits")
        self.local_limits = make_local_limits(limits, machine.cpus, machine.memory)
        return cluster_templates, limits

    def _merge_traitlet(self, configured: Mapping) -> dict:
        """`ClusterManager.templates` entries, each deep-merged over the Dask config entry of that name."""
        return {
            name: dask.config.merge(configured.get(name, {}), template) for name, template in self.templates.items()
        }

    def _template_origins(self, sources: list[str], env: Mapping[str, str], templates: Mapping) -> dict[str, str]:
        """Template name -> the files and variables that define it, for error messages."""
        found: dict[str, list[str]] = {name: [] for name in templates}
        for path, config in dask.config.collect_yaml(sources, return_paths=True):
            defined = dask.config.get(f"{CONFIG_KEY}.templates", default={}, config=config) or {}
            for name in defined if isinstance(defined, Mapping) else ():
                found.setdefault(str(name), []).append(str(path))
        for key, value in env.items():
            config = dask.config.collect_env({key: value})
            defined = dask.config.get(f"{CONFIG_KEY}.templates", default={}, config=config)
            for name in defined if isinstance(defined, Mapping) else ():
                found.setdefault(str(name), []).append(f"${key}")
        for name in self.templates:
            found.setdefault(name, []).append("c.ClusterManager.templates")
        return {name: " + ".join(where) or "the Dask configuration" for name, where in found.items()}

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self):
        """Reattach or reap the clusters recorded by a previous run of this server, then refresh periodically."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await asyncio.shield(self._started)

    async def _start(self):
        self._preparing = [asyncio.ensure_future(self._prepare(backend)) for backend in self._backends.values()]
        for data in self._read_records():
            record = ClusterRecord.from_json(data)
            if self._owned_by_other_live_server(record):
                self._foreign_records.append(data)
                continue
            backend = self._backends.get(record.template)
            if backend is None:
                self.log.error(
                    "Cluster %s of template %r: the template is no longer configured; forgetting it. "
                    "Shut it down with the backend's own tools.",
                    record.id,
                    record.template,
                )
                continue
            try:
                handle = await self._call(
                    backend, backend.reattach(record), self.start_timeout, f"reattaching cluster {record.name}"
                )
            except BackendError as error:
                self.log.error(
                    "Cluster %s could not be reattached, keeping its record for next time: %s", record.id, error.message
                )
                self._foreign_records.append(data)
                continue
            if handle is None:
                self.log.info("Cluster %s (%s) did not survive the restart; cleaned up", record.id, record.backend)
                continue
            record.server = self._server
            self._clusters[record.id] = self._managed(record, backend, handle)
            self.log.info("Reattached cluster %s (%s)", record.id, record.backend)
        self._write_records()
        self._ensure_refreshing()

    async def _prepare(self, backend: ClusterBackend):
        try:
            await self._call(backend, backend.prepare(), self.start_timeout, "preparing")
        except BackendError as error:
            self.log.warning("%s", error.message)

    async def stop(self):
        """The server stops: shut down clusters that cannot outlive it, let go of the others."""
        self._stopping = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for managed in list(self._clusters.values()):
            if managed.handle is None:
                continue
            backend = managed.backend
            action = backend.release if backend.reattachable else backend.close
            try:
                await self._call(
                    backend, action(managed.handle), self.request_timeout, f"stopping {managed.record.name}"
                )
            except BackendError as error:
                self.log.error("Cluster %s: %s", managed.record.id, error.message)
            if not backend.reattachable:
                del self._clusters[managed.record.id]
        for backend in self._backends.values():
            try:
                await self._call(backend, backend.shutdown(), self.request_timeout, "closing its connections")
            except BackendError as error:
                self.log.warning("%s", error.message)
        self._write_records()

    # ---- API ----------------------------------------------------------------------------------

    async def list_templates(self, user: str, groups: Sequence[str]) -> list[dict]:
        """The templates `user` may use, each with its option schema."""
        await self.start()
        result = []
        for template in self.cluster_templates.values():
            if not template.allows(groups):
                continue
            backend = self._backends[template.name]
            available, error, bounds = True, None, {}
            try:
                bounds = await self._call(backend, backend.option_bounds(), self.request_timeout, "reading its options")
            except BackendError as failure:
                available, error = False, failure.message
            result.append(
                {
                    "name": template.name,
                    "title": template.title,
                    "description": template.description,
                    "backend": template.backend,
                    "available": available,
                    "error": error,
                    "schema": make_option_schema(template, bounds),
                    "environments": [
                        {"name": e.name, "title": e.title, "kernels": list(e.kernels)} for e in template.environments
                    ],
                    "default_environment": template.default_environment,
                }
            )
        return result

    async def list_clusters(self, user: str, groups: Sequence[str]) -> list[dict]:
        await self.start()
        await self._discover(groups)
        return self._clusters_json(user, groups)

    async def get_cluster(self, user: str, cluster_id: str) -> dict:
        """The cluster as its scheduler reports it now (one call), not as of the last periodic refresh."""
        await self.start()
        managed = self._managed_of(user, cluster_id)
        if not managed.lock.locked():
            await self._refresh_one(managed)
        if managed.record.id not in self._clusters:
            raise NotFoundError(f"cluster: {managed.record.name} ended on its own (idle timeout or stopped elsewhere)")
        return self._cluster_json(managed)

    async def create_cluster(self, user: str, groups: Sequence[str], body) -> dict:
        """Body `{"template": name, "options": {...}}`, or `{"template": name, "adopt": cluster name}`."""
        await self.start()
        if not isinstance(body, Mapping):
            raise OptionError("body", body, 'body: must be a JSON object such as {"template": "local", "options": {}}')
        unknown = sorted(set(body) - {"template", "options", "adopt"})
        if unknown:
            raise OptionError(
                unknown[0],
                body[unknown[0]],
                f"{cut(unknown[0])}: not a field of a cluster request; send template, options (or adopt)",
            )
        template = self._template_for(groups, body.get("template"))
        backend = self._backends[template.name]
        bounds = await self._call(backend, backend.option_bounds(), self.request_timeout, "reading its options")
        options = validate_options(template, body.get("options", {}), bounds)
        adopt = body.get("adopt")
        adoptable = [d.name for d in self._discovered.get(template.name, [])]
        if adopt is not None and adopt not in adoptable:
            raise NotFoundError(
                f"adopt: {shown(adopt)} is not a cluster of yours that template '{template.name}' can adopt"
            )

        async with self._user_lock(user):
            if adopt is None:
                request = Usage.of_cluster(options.max_workers, options.cores, options.memory)
                self._check_limits(user, groups, template.backend, request, "this cluster")
            record = ClusterRecord(
                id=secrets.token_hex(6),
                owner=user,
                name=adopt or self._next_name(user, template),
                template=template.name,
                backend=template.backend,
                options=options.to_json(),
                created=time.time(),
                server=self._server,
                requested=0 if options.adaptive else options.workers,
                adapt=(options.adapt_minimum, options.adapt_maximum) if options.adaptive else None,
            )
            managed = ManagedCluster(record=record, backend=backend)
            # Recorded before the backend starts anything, so a crash in between leaves a trace.
            self._clusters[record.id] = managed
            self._write_records()
            self._ensure_refreshing()
        async with managed.lock:
            try:
                if adopt is None:
                    handle = await self._start_cluster(backend, record.id, options)
                else:
                    handle = await self._call(backend, backend.adopt(adopt), self.start_timeout, f"adopting {adopt}")
            except ClusterError:
                del self._clusters[record.id]
                self._write_records()
                raise
            self._attach(managed, handle)
            await self._refresh_one(managed)
        self._write_records()
        self._notify()
        return self._cluster_json(managed)

    async def update_cluster(self, user: str, groups: Sequence[str], cluster_id: str, body) -> dict:
        """Body `{"workers": n}` or `{"adapt": {"minimum": a, "maximum": b}}`."""
        await self.start()
        managed = self._managed_of(user, cluster_id)
        template = self.cluster_templates[managed.record.template]
        backend = managed.backend
        bounds = await self._call(backend, backend.option_bounds(), self.request_timeout, "reading its options")
        change = validate_scaling(template, body, bounds)
        async with self._user_lock(user), managed.lock:
            if managed.handle is None:
                raise OptionError(
                    "status",
                    managed.view.status,
                    f"cluster {managed.record.name} is {managed.view.status}; wait until it runs",
                )
            target = change.get("workers", change.get("adapt", (0, 0))[1])
            growth = Usage.of_cluster(
                max(0, target - self._max_workers(managed.record)),
                managed.record.options.get("cores", 1),
                managed.record.options.get("memory", 0),
                clusters=0,
            )
            self._check_limits(user, groups, template.backend, growth, "this scaling")
            if "workers" in change:
                await self._call(
                    backend, backend.scale(managed.handle, change["workers"]), self.request_timeout, "scaling"
                )
                managed.record.requested, managed.record.adapt = change["workers"], None
            else:
                await self._call(
                    backend, backend.adapt(managed.handle, *change["adapt"]), self.request_timeout, "adapting"
                )
                managed.record.adapt = change["adapt"]
            await self._refresh_one(managed)
        self._write_records()
        self._notify()
        return self._cluster_json(managed)

    async def delete_cluster(self, user: str, cluster_id: str):
        await self.start()
        managed = self._managed_of(user, cluster_id)
        async with managed.lock:
            if managed.handle is not None:
                managed.view = replace(managed.view, status="stopping")
                self._notify()
                await self._call(
                    managed.backend,
                    managed.backend.close(managed.handle),
                    self.request_timeout,
                    f"shutting down {managed.record.name}",
                )
            self._clusters.pop(cluster_id, None)
        self._write_records()
        self._notify()

    async def cluster_logs(self, user: str, cluster_id: str) -> dict[str, str]:
        await self.start()
        managed = self._managed_of(user, cluster_id)
        if managed.handle is None:
            return {}
        return await self._call(
            managed.backend, managed.backend.logs(managed.handle), self.request_timeout, "reading logs"
        )

    def subscribe(self, user: str, groups: Sequence[str], send: Callable[[list], None]) -> Callable[[], None]:
        """Call `send(clusters)` with the user's clusters now and after every change; returns the unsubscribe."""
        key = id(send)
        self._subscribers[key] = (user, groups, send)
        send(self._clusters_json(user, groups))
        self._ensure_refreshing()
        return lambda: self._subscribers.pop(key, None)

    # ---- internals ----------------------------------------------------------------------------

    async def _start_cluster(self, backend: ClusterBackend, cluster_id: str, options) -> ClusterHandle:
        """Start a cluster and ask for its first workers; whatever fails half-way is shut down again."""
        try:
            handle = await self._call(
                backend,
                backend.create(cluster_id, options),
                self.start_timeout,
                f"starting a {backend.template.name} cluster",
            )
        except (ClusterError, asyncio.CancelledError):
            await backend.remove_cluster_directory(cluster_id)
            raise
        try:
            await self._call(backend, backend.size(handle, options), self.request_timeout, "asking for workers")
        except (ClusterError, asyncio.CancelledError):
            with contextlib.suppress(ClusterError):
                await self._call(backend, backend.close(handle), self.request_timeout, "shutting it down again")
            raise
        return handle

    async def _call(self, backend: ClusterBackend, call: Awaitable, timeout: float, action: str):
        """Await a backend call within `timeout`; turn what can go wrong into a `BackendError` for people."""
        where = f"{action}: the {backend.name} backend of template '{backend.template.name}'"
        try:
            return await asyncio.wait_for(call, timeout)
        except BackendError as error:  # the backend's own words, with what we were doing
            raise BackendError(f"{action}: {error.message}", unavailable=error.status_code == 503) from error
        except (ClusterError, ClusterGone):
            raise
        except TimeoutError:
            raise BackendError(f"{where} did not answer within {timeout:g} s", unavailable=True) from None
        except OSError as error:
            raise BackendError(f"{where} cannot be reached: {error}", unavailable=True) from error
        except Exception as error:
            explained = backend.explain(error)
            if explained is None:
                self.log.warning("%s failed", where, exc_info=True)
                raise BackendError(f"{where} failed: {error}") from error
            raise BackendError(f"{action}: {explained.message}", unavailable=explained.status_code == 503) from error

    def _template_for(self, groups: Sequence[str], name) -> ClusterTemplate:
        allowed = [t.name for t in self.cluster_templates.values() if t.allows(groups)]
        template = self.cluster_templates.get(name) if isinstance(name, str) else None
        if template is None:
            raise NotFoundError(
                f"template: {shown(name)} is not a template you may use; choose one of: {', '.join(allowed)}"
            )
        if name not in allowed:
            # Worded as the spawner words profiles of other groups: the user learns whom to ask.
            raise NotAllowedError(
                f"template: {name!r} is only for members of {', '.join(template.groups)}; "
                f"choose one of: {', '.join(allowed)}"
            )
        return template

    def _managed_of(self, user: str, cluster_id: str) -> ManagedCluster:
        managed = self._clusters.get(cluster_id)
        if managed is None or managed.record.owner != user:
            raise NotFoundError(
                f"cluster: no cluster {shown(cluster_id)} of yours; list them with GET sciencelab/api/dask/clusters"
            )
        return managed

    def _user_lock(self, user: str) -> asyncio.Lock:
        return self._user_locks.setdefault(user, asyncio.Lock())

    def _check_limits(self, user: str, groups: Sequence[str], backend: str, request: Usage, action: str):
        """Refuse (403) what would take the user's clusters above their limits, or their local
        clusters above what this server has."""
        check_limits(resolve_limits(self.limit_config, user, groups), self._usage(user), request, action)
        if backend == "local":
            check_limits(self.local_limits, self._usage(user, backend="local"), request, action)

    @staticmethod
    def _max_workers(record: ClusterRecord) -> int:
        return record.adapt[1] if record.adapt else record.requested

    def _usage(self, user: str, backend: str | None = None) -> Usage:
        """What the user's clusters (of `backend` only, if given) may take at most."""
        usage = Usage()
        for managed in self._clusters.values():
            record = managed.record
            if record.owner == user and backend in (None, record.backend):
                options = record.options
                usage += Usage.of_cluster(self._max_workers(record), options.get("cores", 1), options.get("memory", 0))
        return usage

    def _next_name(self, user: str, template: ClusterTemplate) -> str:
        taken = {m.record.name for m in self._clusters.values() if m.record.owner == user}
        number = 1
        while f"{template.name}-{number}" in taken:
            number += 1
        return f"{template.name}-{number}"

    def _managed(self, record: ClusterRecord, backend: ClusterBackend, handle: ClusterHandle) -> ManagedCluster:
        managed = ManagedCluster(record=record, backend=backend)
        self._attach(managed, handle)
        return managed

    def _attach(self, managed: ManagedCluster, handle: ClusterHandle):
        managed.handle = handle
        managed.view = ClusterView(
            status="running",
            scheduler_address=handle.scheduler_address,
            dashboard_url=handle.dashboard_url,
            connect_code=make_connect_code(managed.backend.connect_recipe(handle)),
        )
        managed.record.backend_state = managed.backend.backend_state(handle)

    def cluster_ids(self, backend: str) -> set[str]:
        """The ids of the clusters of `backend` this server runs now."""
        return {cluster_id for cluster_id, managed in self._clusters.items() if managed.record.backend == backend}

    @property
    def refreshing(self) -> bool:
        """Whether clusters are refreshed every `refresh_interval`: only while one runs or a panel listens."""
        return self._refresher is not None and not self._refresher.done()

    def _ensure_refreshing(self):
        if not self._stopping and not self.refreshing:
            self._refresher = asyncio.ensure_future(self._refresh_loop())

    async def _refresh_loop(self):
        # Only while a cluster runs or a panel listens: an idle server should not wake up every
        # second for nothing. A new cluster or subscriber starts the loop again.
        while self._clusters or self._subscribers:
            await asyncio.sleep(self.refresh_interval)
            try:
                await self.refresh()
            except Exception:  # one bad refresh must not end live updates for good
                self.log.exception("Refreshing the Dask clusters failed")

    async def refresh(self):
        """Ask every cluster for its workers, end the ones that stopped on their own, push the news."""
        before = [m.record.to_json() for m in self._clusters.values()]
        await asyncio.gather(*(self._refresh_one(m) for m in list(self._clusters.values()) if not m.lock.locked()))
        if self._subscribers and time.monotonic() - self._discovered_at > self.discovery_interval:
            await self._discover(None)
        if [m.record.to_json() for m in self._clusters.values()] != before:
            self._write_records()
        self._notify()

    async def _refresh_one(self, managed: ManagedCluster):
        backend, handle, record = managed.backend, managed.handle, managed.record
        if handle is None:
            return
        try:
            workers = await self._call(
                backend, backend.workers(handle, record.requested), self.request_timeout, "reading its workers"
            )
        except ClusterGone as gone:
            self.log.info("Cluster %s ended on its own (%s); cleaning up", record.id, gone)
            with contextlib.suppress(BackendError):
                await self._call(backend, backend.close(handle), self.request_timeout, "cleaning up")
            self._clusters.pop(record.id, None)
            return
        except BackendError as error:
            managed.view = replace(managed.view, error=error.message, updated=time.time())
            return
        managed.view = replace(managed.view, workers=tuple(workers), error=None, updated=time.time())
        record.backend_state = backend.backend_state(handle)

    async def _discover(self, groups: Sequence[str] | None):
        """Refresh the clusters made elsewhere, for every backend that can list them (bounded in time)."""
        self._discovered_at = time.monotonic()
        for name, backend in self._backends.items():
            if groups is not None and not self.cluster_templates[name].allows(groups):
                continue
            try:
                found = await self._call(backend, backend.discover(), self.request_timeout, "listing clusters")
            except BackendError as error:
                self.log.warning("%s", error.message)
                continue
            managed_names = {
                m.handle.name for m in self._clusters.values() if m.handle is not None and m.record.template == name
            }
            self._discovered[name] = [d for d in found if d.name not in managed_names]

    def _cluster_json(self, managed: ManagedCluster) -> dict:
        return make_cluster_json(managed.record, managed.view)

    def _clusters_json(self, user: str, groups: Sequence[str]) -> list[dict]:
        clusters = [self._cluster_json(m) for m in self._clusters.values() if m.record.owner == user]
        for template_name, found in self._discovered.items():
            template = self.cluster_templates[template_name]
            if template.allows(groups):
                clusters += [
                    make_discovered_json(template.name, template.backend, d.name, d.status, d.dashboard_url)
                    for d in found
                ]
        return clusters

    def _notify(self):
        for user, groups, send in list(self._subscribers.values()):
            try:
                send(self._clusters_json(user, groups))
            except Exception:
                self.log.exception("Sending a cluster update failed")

    def _save_backend_state(self, cluster_id: str, state: dict):
        """A backend learnt something it needs after a crash (a batch job id): on disk before it goes on."""
        managed = self._clusters.get(cluster_id)
        if managed is not None:
            managed.record.backend_state = state
            self._write_records()

    def _owned_by_other_live_server(self, record: ClusterRecord) -> bool:
        pid, started = record.server.get("pid"), record.server.get("started")
        if pid == self._server["pid"] or pid is None:
            return False
        try:
            return abs(psutil.Process(pid).create_time() - started) < 1
        except psutil.Error:
            return False

    def _read_records(self) -> list[dict]:
        path = Path(self.state_file)
        if not path.exists():
            return []
        try:
            return json.loads(path.read_text())["clusters"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.log.error("Cannot read the cluster records in %s (%s); starting without them", path, error)
            return []

    def _write_records(self):
        """Write every record atomically (a crash leaves the old file or the new one, never half of one)."""
        path = Path(self.state_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        records = self._foreign_records + [m.record.to_json() for m in self._clusters.values()]
        temporary = path.with_suffix(".tmp")
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            json.dump({"clusters": records}, file, indent=1)
        os.replace(temporary, path)
