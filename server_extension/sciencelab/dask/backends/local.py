"""`local`: a `distributed.LocalCluster` inside the Jupyter server, workers as its child processes.

The scheduler runs in the server's event loop (as dask-labextension does), each worker in a process
of the server's own Python. Clusters end with the server: a worker process exits when its parent's
pipe closes, and after a crash the recorded worker processes are ended at the next start
(`reattach` never reattaches, it reaps). The dashboard is reached through jupyter-server-proxy at
`<base_url>proxy/<port>/status`.

Workers start through multiprocessing's fork server by default, not by spawning a fresh
interpreter: every new worker process runs the server's main script again (`jupyter-server`,
which imports all of jupyter_server: seconds per worker), unless what that script imports is
already loaded in the process it forks from. The fork server preloads those modules and
distributed once, when the manager starts, so workers start as fast as in a notebook's own
`LocalCluster`. (Python 3.11's fork server does not preload `__main__` when asked to: it is handed
`init_main_from_path` where it looks for `main_path`; hence the script's modules, by name.)
"""

import ast
import asyncio
import contextlib
import multiprocessing.forkserver
import sys
from pathlib import Path

import dask.config
import psutil
from distributed import Adaptive, LocalCluster
from distributed.utils import get_mp_context
from jupyter_server.utils import url_path_join

from ..clusters import ClusterRecord, WorkerInfo
from ..errors import ClusterGone
from ..options import ClusterOptions
from .base import ClusterBackend, ClusterHandle

# Seconds a reaped worker process gets to exit on SIGTERM before SIGKILL.
REAP_GRACE = 3


def main_script_modules(source: str) -> list[str]:
    """The modules a main script imports at its top level (`from jupyter_server.serverapp import main`)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return sorted(names)


class LocalBackend(ClusterBackend):
    """Clusters of worker processes on the Jupyter server's own machine."""

    name = "local"
    settings_schema = {
        "type": "object",
        "properties": {
            "host": {
                "type": "string",
                "description": "Address the scheduler, workers and dashboard listen on (default 127.0.0.1: "
                               "only this machine can reach them).",
            },
            "multiprocessing_method": {
                "enum": ["forkserver", "spawn"],
                "description": "How worker processes start (default forkserver: see the module docstring).",
            },
        },
        "additionalProperties": False,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # distributed reads this when a nanny starts its worker; only our LocalClusters run in this process.
        dask.config.set({"distributed.worker.multiprocessing-method":
                         self.settings.get("multiprocessing_method", "forkserver")})

    async def prepare(self):
        if dask.config.get("distributed.worker.multiprocessing-method") == "forkserver":
            # distributed sets its own preload list on first use; ours replaces it.
            main_path = getattr(sys.modules["__main__"], "__file__", None)
            main_modules = main_script_modules(Path(main_path).read_text()) if main_path else []
            get_mp_context().set_forkserver_preload([*main_modules, "distributed"])
            await asyncio.to_thread(multiprocessing.forkserver.ensure_running)

    async def create(self, cluster_id: str, options: ClusterOptions) -> ClusterHandle:
        host = self.settings.get("host", "127.0.0.1")
        scheduler_kwargs = {"idle_timeout": f"{options.idle_timeout * 60:g}s"} if options.idle_timeout else {}
        cluster = await LocalCluster(
            name=cluster_id,
            n_workers=0,  # workers start in the background: the API answers as soon as the scheduler does
            threads_per_worker=options.cores,
            memory_limit=options.memory_bytes,
            resources={"GPU": options.gpus} if options.gpus else None,
            processes=True,
            host=host,
            dashboard_address=f"{host}:0",
            scheduler_kwargs=scheduler_kwargs,
            silence_logs=False,  # LocalCluster would otherwise reset the server's own logging levels
            asynchronous=True,
        )
        handle = ClusterHandle(cluster=cluster, name=cluster_id, scheduler_address=cluster.scheduler_address,
                               dashboard_url=self._dashboard_url(cluster))
        if options.adaptive:
            await self.adapt(handle, options.adapt_minimum, options.adapt_maximum)
        else:
            await self.scale(handle, options.workers)
        return handle

    async def scale(self, handle: ClusterHandle, workers: int):
        cluster: LocalCluster = handle.cluster
        if cluster._adaptive is not None:
            cluster._adaptive.stop()  # distributed's own `Cluster.adapt` does the same before re-adapting
            cluster._adaptive = None
        cluster.scale(workers)

    async def adapt(self, handle: ClusterHandle, minimum: int, maximum: int):
        handle.cluster.adapt(Adaptive, minimum=minimum, maximum=maximum)

    async def close(self, handle: ClusterHandle):
        await handle.cluster.close()

    async def reattach(self, record: ClusterRecord) -> None:
        """A local cluster cannot outlive its server: end any worker process still alive, never reattach."""
        processes = []
        for pid, started in record.backend_state.get("worker_processes", []):
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if abs(process.create_time() - started) < 1:  # the same process, not a reused pid
                    processes.append(process)
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = await asyncio.to_thread(psutil.wait_procs, processes, REAP_GRACE)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        if processes:
            self.log.warning("Ended %d worker process(es) left by local cluster %s", len(processes), record.id)
        return None

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        # The in-process scheduler closes itself after its idle timeout.
        if handle.cluster.scheduler.status.name in ("closing", "closed", "failed"):
            raise ClusterGone(f"the scheduler of {handle.name} closed")
        return await super().workers(handle, requested)

    def requested_workers(self, handle: ClusterHandle, requested: int) -> int:
        return len(handle.cluster.worker_spec)

    def backend_state(self, handle: ClusterHandle) -> dict:
        """The worker processes (pid, start time) to end should the server crash."""
        processes = []
        for nanny in handle.cluster.workers.values():
            pid = getattr(nanny, "pid", None)
            with contextlib.suppress(psutil.Error, TypeError):
                processes.append([pid, psutil.Process(pid).create_time()])
        return {"worker_processes": sorted(processes)}

    def _dashboard_url(self, cluster: LocalCluster) -> str | None:
        dashboard = cluster.scheduler.services.get("dashboard")
        if dashboard is None:
            return None  # bokeh is not installed
        return url_path_join(self.base_url, "proxy", str(dashboard.port), "status")
