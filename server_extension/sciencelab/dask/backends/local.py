"""`local`: a `distributed.LocalCluster` inside the Jupyter server, workers as its child processes.

The scheduler runs in the server's event loop (as dask-labextension does), each worker in a process
of the interpreter of the environment the user chose: the server's own Python, or the interpreter of
another kernel (another virtual or conda environment), so a notebook's client and its workers run
the same packages. Clusters end with the server: a worker process exits when its parent's pipe
closes or its scheduler goes away, and after a crash the recorded worker processes are ended at the
next start (`reattach` never reattaches, it reaps). The dashboard is reached through
jupyter-server-proxy at `<base_url>proxy/<port>/status`. Scheduler, workers and clients speak TLS
with the cluster's own credentials (`credentials`); the workers' spill space is in the cluster's
folder, removed with it.

Workers start through multiprocessing's fork server by default (`ClusterManager.local_worker_start`),
not by spawning a fresh interpreter: every new worker process runs the server's main script again
(`jupyter-server`, which imports all of jupyter_server: seconds per worker), unless what that script
imports is already loaded in the process it forks from. The fork server preloads those modules and
distributed once, when the manager starts, so workers start as fast as in a notebook's own
`LocalCluster`. (Python 3.11's fork server does not preload `__main__` when asked to: it is handed
`init_main_from_path` where it looks for `main_path`; hence the script's modules, by name.)

Workers of another interpreter are `InterpreterWorker`s: a `distributed.cli.dask_spec` process of
that interpreter running a `Nanny`, which `LocalCluster` (a `SpecCluster`) scales, adapts and closes
like its own workers. Before such a cluster starts, one short subprocess checks that the interpreter
has this server's `distributed` (`interpreters.probe_interpreter`): a mismatch is a 400 naming the
environment, not a cluster whose workers never connect.
"""

import ast
import asyncio
import contextlib
import json
import multiprocessing.forkserver
import os
import sys
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

import dask.config
import distributed
import psutil
from distributed import LocalCluster, Security
from distributed.deploy.spec import ProcessInterface
from distributed.utils import get_mp_context

from ..clusters import ClusterRecord
from ..credentials import TlsFiles, make_security, make_worker_tls_environment
from ..errors import BackendError, OptionError
from ..interpreters import probe_interpreter, worker_interpreter_problem
from ..options import ClusterOptions
from ..templates import Environment
from .base import ClusterHandle
from .spec_cluster import SpecClusterBackend, SpecClusterHandle

# Seconds a reaped worker process gets to exit on SIGTERM before SIGKILL.
REAP_GRACE = 3
# Seconds the interpreter of another environment may take to say which distributed it has.
PROBE_TIMEOUT = 30
# Seconds a worker of another interpreter keeps trying to reach its scheduler before it gives up
# (the server was killed before the worker connected: it must not wait forever).
WORKER_DEATH_TIMEOUT = 60


def main_script_modules(source: str) -> list[str]:
    """The modules a main script imports at its top level (`from jupyter_server.serverapp import main`)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return sorted(names)


def make_worker_spec(
    name, nthreads: int, memory_limit: int, host: str, protocol: str, local_directory: str, resources: dict | None
) -> dict:
    """The `dask spec` specification of one `Nanny` of a local cluster, as `LocalCluster` starts its own.

    Its credentials are not in the spec (JSON has no `Security`): the process reads them from the
    Dask configuration variables of `make_worker_tls_environment`.
    """
    options = {
        "name": name,
        "nthreads": nthreads,
        "memory_limit": memory_limit,
        "host": host,
        "protocol": protocol,
        "local_directory": local_directory,
        "death_timeout": WORKER_DEATH_TIMEOUT,
    }
    if resources:
        options["resources"] = resources
    return {"cls": "distributed.Nanny", "opts": options}


async def end_processes(processes: list[psutil.Process], grace: float):
    """SIGTERM `processes`, then SIGKILL those still alive after `grace` seconds."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()


def worker_processes(workers: Iterable) -> dict:
    """The worker processes (pid, start time) to end should the server crash: a `Nanny`'s worker
    process, an `InterpreterWorker`'s `dask spec` process (the backend state of a local cluster)."""
    processes = {}
    for worker in workers:
        pid = getattr(worker, "pid", None)
        if pid is None:  # not started yet (and `psutil.Process(None)` would be the server itself)
            continue
        with contextlib.suppress(psutil.Error):
            processes[pid] = psutil.Process(pid).create_time()
    return {"worker_processes": sorted([pid, started] for pid, started in processes.items())}


class InterpreterWorker(ProcessInterface):
    """One worker of a local cluster in another Python interpreter than the server's.

    A child process `<interpreter> -m distributed.cli.dask_spec <scheduler> --spec <Nanny>`: distributed's
    own launcher of a specified process (what its `SubprocessWorker` runs, with the server's
    `sys.executable` fixed there). The spec is JSON, so the worker keeps the name `LocalCluster` gave
    it (an integer) and scaling down finds it. `started(worker)` is called as soon as the process
    exists, so its PID is on disk before the server could crash.
    """

    def __init__(
        self,
        scheduler: str,
        *,
        interpreter: str,
        name,
        nthreads: int,
        memory_limit: int,
        host: str,
        protocol: str,
        security: Security,
        local_directory: str,
        resources: dict | None = None,
        started: Callable[["InterpreterWorker"], None] = lambda worker: None,
        **in_process_options,
    ):
        # `in_process_options`: what LocalCluster gives every worker but only in-process workers take
        # (services, dashboard flags); a worker process's defaults are the same.
        super().__init__()
        self.name = name
        spec = make_worker_spec(name, nthreads, memory_limit, host, protocol, local_directory, resources)
        self.command = [interpreter, "-m", "distributed.cli.dask_spec", scheduler, "--spec", json.dumps(spec)]
        tls = TlsFiles(cert=security.tls_worker_cert, key=security.tls_worker_key)
        self.environment = {**os.environ, **make_worker_tls_environment(tls)}
        self.process: asyncio.subprocess.Process | None = None
        self._started = started

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self):
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.DEVNULL, env=self.environment
        )
        self._started(self)
        await super().start()

    async def close(self):
        """SIGTERM: `dask spec` closes its nanny, which ends its worker; what is still alive after
        `REAP_GRACE` is killed."""
        if self.process is not None and self.process.returncode is None:
            descendants = []
            with contextlib.suppress(psutil.Error):
                descendants = psutil.Process(self.process.pid).children(recursive=True)
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), REAP_GRACE)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
            await end_processes(descendants, REAP_GRACE)
        await super().close()


class LocalBackend(SpecClusterBackend):
    """Clusters of worker processes on the Jupyter server's own machine."""

    name = "local"
    settings_schema: ClassVar[dict] = {
        "type": "object",
        "properties": {
            "host": {
                "type": "string",
                "description": "Address the scheduler, workers and dashboard listen on (default 127.0.0.1: "
                "only this machine can reach them).",
            },
        },
        "additionalProperties": False,
    }

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
        worker_options = {}
        if options.environment is not None and options.environment.value != sys.executable:
            await self._check_interpreter(options.environment)
            # LocalCluster lists new workers once all of them started; those it does not list yet.
            starting = weakref.WeakSet()

            def started(worker: InterpreterWorker):
                starting.add(worker)
                # `cluster` is bound by then: the cluster starts without workers.
                self.save_state(cluster_id, worker_processes([*cluster.workers.values(), *starting]))

            worker_options = {
                "worker_class": InterpreterWorker,
                "interpreter": options.environment.value,
                "started": started,
            }
        tls = await self.new_credentials(cluster_id)
        cluster = await LocalCluster(
            name=cluster_id,
            n_workers=0,  # workers start in the background: the API answers as soon as the scheduler does
            threads_per_worker=options.cores,
            memory_limit=options.memory_bytes,
            resources={"GPU": options.gpus} if options.gpus else None,
            processes=True,
            host=host,
            protocol="tls://",
            security=make_security(tls),
            dashboard_address=f"{host}:0",
            # The workers' spill space goes with the cluster, not into the user's working directory.
            local_directory=str(self.cluster_directory(cluster_id)),
            scheduler_kwargs=scheduler_kwargs,
            silence_logs=False,  # LocalCluster would otherwise reset the server's own logging levels
            asynchronous=True,
            **worker_options,
        )
        return SpecClusterHandle(
            cluster=cluster,
            name=cluster_id,
            scheduler_address=cluster.scheduler_address,
            dashboard_url=self.dashboard_url(cluster),
            tls=tls,
        )

    async def close(self, handle: ClusterHandle):
        await handle.cluster.close()
        await self.remove_cluster_directory(handle.name)

    async def reattach(self, record: ClusterRecord) -> None:
        """A local cluster cannot outlive its server: end any worker process still alive, never reattach.

        A worker of another interpreter is recorded as its `dask spec` process: ended, its nanny ends
        its worker, and killed, distributed's parent-alive pipe ends the worker."""
        processes = []
        for pid, started in record.backend_state.get("worker_processes", []):
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                if abs(process.create_time() - started) < 1:  # the same process, not a reused pid
                    processes.append(process)
        await end_processes(processes, REAP_GRACE)
        await self.remove_cluster_directory(record.id)
        if processes:
            self.log.warning("Ended %d worker process(es) left by local cluster %s", len(processes), record.id)
        return None

    def backend_state(self, handle: ClusterHandle) -> dict:
        return worker_processes(handle.cluster.workers.values())

    async def _check_interpreter(self, environment: Environment):
        """Refuse an interpreter that cannot run workers of this server's scheduler (400), before anything starts."""
        probe = await probe_interpreter(environment.value, PROBE_TIMEOUT)
        problem = worker_interpreter_problem(
            environment, probe, distributed.__version__, [e.name for e in self.template.environments]
        )
        if problem is None:
            return
        if probe.timed_out:
            raise BackendError(problem, unavailable=True)  # a busy machine: worth trying again
        raise OptionError("environment", environment.name, problem)
