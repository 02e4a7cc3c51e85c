"""What the `htcondor` and `slurm` backends share: dask-jobqueue clusters whose workers are batch jobs.

As with `local`, the scheduler runs in the Jupyter server's event loop (dask-jobqueue's own design):
it ends with the server, its idle timeout closes it, and its dashboard is reached through
jupyter-server-proxy at `<base_url>proxy/<port>/status`. Each worker is one batch job.

Three things dask-jobqueue does not do, done here:

- Every job id is written to the cluster's record on disk the moment the submit command returns
  (`RecordedJob`), so a restarted server removes every job a crashed one left; jobs also carry the
  cluster's id (an HTCondor job attribute, the SLURM job name), which catches a job whose id was
  never recorded because the server died during its submission.
- Each job's state comes from one query of the batch system per cluster and refresh (`query_jobs`),
  at most one per `query_interval` however many panels and API clients ask, and only for jobs whose
  worker is not connected and whose end is not known yet: a cluster whose workers all run costs no
  query at all.
- A submission the batch system refuses becomes a failed worker with the batch system's message,
  rather than an exception in a background task nobody sees.
"""

import abc
import asyncio
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from distributed import Security
from distributed.core import Status
from jupyter_core.paths import jupyter_data_dir

from ..batch import JobState, WorkerJob, job_log_key, make_batch_workers, submission_refusal, with_log_tail
from ..clusters import ClusterRecord, WorkerInfo, workers_from_identity
from ..connect import Call, ConnectRecipe, Variable
from ..errors import BackendError, ClusterGone
from ..options import ClusterOptions
from .base import ClusterBackend, ClusterHandle
from .local import LocalBackend

# Lines of each job log the logs view shows.
JOB_LOG_LINES = 200
# A string an admin puts into a submit description or batch script: one line.
ONE_LINE = {"type": "string", "not": {"pattern": "[\\r\\n]"}}
ONE_LINE_LIST = {"type": "array", "items": ONE_LINE}
# Admin-only settings both batch backends have (each adds its own).
COMMON_SETTINGS = {
    "log_directory": {
        **ONE_LINE,
        "pattern": "^/",
        "description": "Directory of the jobs' output and error logs (absolute), writable by the "
        "jobs; default: <jupyter data dir>/sciencelab/dask-jobs.",
    },
    "interface": {**ONE_LINE, "description": "Network interface the scheduler and workers use, e.g. eth0 or ib0."},
    "scheduler_host": {
        **ONE_LINE,
        "description": "Address the scheduler listens on (default: the interface's, else every address).",
    },
    "scheduler_contact_host": {
        **ONE_LINE,
        "description": "Host name or address of this server as the batch "
        "nodes reach it, when it differs from scheduler_host "
        "(a pod behind a NodePort, NAT).",
    },
    "prologue": {
        **ONE_LINE_LIST,
        "description": "Shell lines each job runs before its worker (source a setup script, load a module).",
    },
    "local_directory": {**ONE_LINE, "description": "Workers' spill directory on the batch node, e.g. $TMPDIR."},
    "death_timeout": {
        "type": "number",
        "minimum": 1,
        "description": "Seconds a worker waits for an unreachable scheduler before its job ends (default 60).",
    },
    "query_interval": {
        "type": "number",
        "minimum": 0,
        "description": "Seconds between two queries of the batch system for one cluster's job states "
        "(default 1), however often the cluster is refreshed or asked for; workers "
        "connecting show at once, from the scheduler.",
    },
    "tls": {
        "type": "boolean",
        "description": "Encrypt scheduler-worker traffic with a temporary certificate "
        "made for each cluster and shipped with its jobs (default false).",
    },
}


@dataclass(frozen=True)
class TlsFiles:
    """A cluster's temporary certificate (its own CA) and key, as files; or as a job names them."""

    cert: str
    key: str


def worker_lifetime(walltime_minutes: int) -> int:
    """Seconds a worker lives: it retires gracefully before the batch system kills its job at the walltime.

    The margin is a tenth of the walltime, at least one minute and at most five.
    """
    walltime = walltime_minutes * 60
    return max(1, walltime - min(300, max(60, walltime // 10)))


def make_common_job_kwargs(
    options: ClusterOptions, settings: Mapping, log_directory: str, worker_tls: TlsFiles | None
) -> dict:
    """The dask-jobqueue job arguments both batch backends build the same way (pure).

    Numbers are validated options, strings the admin's settings; the worker's Python is the chosen
    environment's (admin-listed) or, with none listed, the server's own. Workers retire before the
    walltime (`--lifetime`), announce their GPUs as a resource, and with `worker_tls` (the
    certificate as the job sees it) speak TLS only.
    """
    worker_args = ["--lifetime", f"{worker_lifetime(options.walltime)}s"]
    if options.gpus:
        worker_args += ["--resources", f"GPU={options.gpus}"]
    if worker_tls:
        worker_args += ["--tls-ca-file", worker_tls.cert, "--tls-cert", worker_tls.cert, "--tls-key", worker_tls.key]
    kwargs = {
        "cores": options.cores,
        "memory": options.memory_bytes,
        "processes": 1,  # one worker per job: a job's state is its worker's
        "python": options.environment.value if options.environment else sys.executable,
        "interface": settings.get("interface"),
        "protocol": "tls://" if worker_tls else None,
        "log_directory": log_directory,
        "job_script_prologue": list(settings.get("prologue", [])),
        "worker_extra_args": worker_args,
        "death_timeout": settings.get("death_timeout", 60),
    }
    if "local_directory" in settings:
        kwargs["local_directory"] = settings["local_directory"]
    return kwargs


def make_scheduler_options(options: ClusterOptions, settings: Mapping) -> dict:
    """The in-process scheduler's options (pure): where it listens, its dashboard, its idle timeout."""
    scheduler = {"dashboard_address": "127.0.0.1:0"}  # reached through jupyter-server-proxy only
    if "scheduler_host" in settings:
        scheduler["host"] = settings["scheduler_host"]
    if options.idle_timeout:
        scheduler["idle_timeout"] = f"{options.idle_timeout * 60:g}s"
    return scheduler


class JobJournal:
    """The jobs of one cluster: their ids from the moment the submit command returns, and their states.

    `save` persists the ids (the manager writes the cluster's record); it runs before the submission
    that produced an id returns to dask-jobqueue.
    """

    def __init__(self, save: Callable[[], None]):
        self._save = save
        self.job_ids: dict[str, str] = {}  # worker name -> job id
        self.states: dict[str, JobState] = {}  # worker name -> the latest state of its job
        self.removed_all = False  # every job was removed with one command: no job needs its own
        self.queried_at = -math.inf  # time.monotonic() of the last query of the batch system

    def submitted(self, name: str, job_id: str):
        self.job_ids[name] = job_id
        self._save()

    def refused(self, name: str, state: JobState):
        self.states[name] = state

    def worker_jobs(self, names: Sequence[str]) -> list[WorkerJob]:
        return [WorkerJob(name, self.job_ids.get(name), self.states.get(name)) for name in names]

    def forget_except(self, names: Sequence[str]):
        """Drop the jobs of workers the cluster no longer has (scaled down, retired, ended)."""
        keep = set(names)
        self.job_ids = {name: job for name, job in self.job_ids.items() if name in keep}
        self.states = {name: state for name, state in self.states.items() if name in keep}

    def to_state(self) -> dict:
        return {"jobs": dict(self.job_ids)}


class RecordedJob:
    """Mixed into dask-jobqueue's job classes: the journal learns each job id before `start()` returns."""

    def __init__(self, *args, journal: JobJournal, **kwargs):
        super().__init__(*args, **kwargs)
        self.journal = journal

    async def _submit_job(self, script_filename):
        output = await super()._submit_job(script_filename)
        self.journal.submitted(self.name, self._job_id_from_submit_output(output))
        return output

    async def start(self):
        try:
            await super().start()
        # The submit command failed (dask-jobqueue's RuntimeError carries its stderr), is missing, or
        # printed no job id (a job tagged with the cluster may exist: shutting down removes it).
        except (RuntimeError, OSError, ValueError) as error:
            self.journal.refused(self.name, submission_refusal(str(error)))
            self.status = Status.running  # a worker that exists, failed: scaling down forgets it

    async def close(self):
        if not self.journal.removed_all:
            await super().close()
        self.status = Status.closed


class TlsFromJobArguments:
    """Mixed into dask-jobqueue's cluster classes: workers take TLS from the job arguments our builders
    make (for HTCondor, the certificate shipped into the job's scratch directory), not from copies
    dask-jobqueue would write into a shared directory and name in every job."""

    def _get_worker_security(self, security):
        return None


@dataclass
class BatchClusterHandle(ClusterHandle):
    journal: JobJournal = field(default=None)
    tls: TlsFiles | None = None  # the server's copy of the cluster's certificate


def write_tls_files(security: Security, directory: Path) -> TlsFiles:
    """Write a temporary certificate and its key into `directory`, readable by this account only."""
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    files = TlsFiles(cert=str(directory / "cert.pem"), key=str(directory / "key.pem"))
    for path, contents in ((files.cert, security.tls_ca_file), (files.key, security.tls_scheduler_key)):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(contents)
    return files


def tls_client_recipe(address: str, tls: TlsFiles) -> ConnectRecipe:
    """A client that connects with the cluster's certificate (pure)."""
    return ConnectRecipe(
        "dask.distributed",
        "Client",
        (
            Call(
                "security",
                "Security",
                kwargs=(
                    ("tls_ca_file", tls.cert),
                    ("tls_client_cert", tls.cert),
                    ("tls_client_key", tls.key),
                    ("require_encryption", True),
                ),
            ),
            Call("client", "Client", (address,), (("security", Variable("security")),)),
        ),
        also_import=("Security",),
    )


class JobQueueBackend(ClusterBackend):
    """A dask-jobqueue cluster; subclasses name the cluster class and talk to their batch system."""

    #: dask-jobqueue's cluster class (`HTCondorCluster`, `SLURMCluster`)
    jobqueue_cluster: ClassVar[type]
    #: what is created: `jobqueue_cluster` with `TlsFromJobArguments`, its job class with `RecordedJob`
    cluster_class: ClassVar[type]
    job_class: ClassVar[type]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        base = cls.jobqueue_cluster
        cls.cluster_class = type(f"Sciencelab{base.__name__}", (TlsFromJobArguments, base), {"__module__": __name__})
        cls.job_class = type(f"Recorded{base.job_cls.__name__}", (RecordedJob, base.job_cls), {"__module__": __name__})

    @abc.abstractmethod
    def job_kwargs(self, cluster_id: str, options: ClusterOptions, log_directory: str, tls: TlsFiles | None) -> dict:
        """The job arguments of a cluster, from the backend's pure builder; `tls`: the server's files."""

    @abc.abstractmethod
    async def query_jobs(self, cluster_id: str, job_ids: Sequence[str]) -> dict[str, JobState]:
        """The states of `job_ids` (jobs of cluster `cluster_id`), with one query of the batch system.

        Jobs the batch system no longer knows come back ended, as far as it can tell.
        """

    @abc.abstractmethod
    async def remove_jobs(self, cluster_id: str, job_ids: Sequence[str]):
        """Remove the jobs `job_ids` and any other job tagged with `cluster_id`; fail if one is left."""

    @abc.abstractmethod
    def job_log_paths(self, cluster_id: str, job_id: str, log_directory: str) -> tuple[str, str]:
        """The job's output and error log files."""

    @property
    def log_directory(self) -> str:
        return self.settings.get("log_directory") or str(Path(jupyter_data_dir()) / "sciencelab" / "dask-jobs")

    async def create(self, cluster_id: str, options: ClusterOptions) -> ClusterHandle:
        journal = JobJournal(lambda: self.save_state(cluster_id, journal.to_state()))
        scheduler_options = make_scheduler_options(options, self.settings)
        tls, security = None, None
        if self.settings.get("tls"):
            security = Security.temporary()
            tls = await asyncio.to_thread(write_tls_files, security, self._tls_directory(cluster_id))
        job = self.job_kwargs(cluster_id, options, self.log_directory, tls)
        cluster = await self.cluster_class(
            name=cluster_id,
            asynchronous=True,
            interface=job.pop("interface"),  # the cluster gives both back to every job
            protocol=job.pop("protocol"),
            security=security,  # the scheduler's, and the cluster's own connection to it
            scheduler_options=scheduler_options,
            silence_logs=False,  # dask-jobqueue would otherwise reset the server's own logging levels
            job_cls=self.job_class,
            journal=journal,
            **job,
        )
        contact_host = self.settings.get("scheduler_contact_host")
        if contact_host:
            # Workers are told this address (SpecCluster reads it for every new job): the port is the
            # one the scheduler bound, known only now.
            protocol = cluster.scheduler_address.split("://")[0]
            cluster.scheduler.contact_address = f"{protocol}://{contact_host}:{cluster.scheduler.port}"
        handle = BatchClusterHandle(
            cluster=cluster,
            name=cluster_id,
            scheduler_address=cluster.scheduler_address,
            dashboard_url=self._dashboard_url(cluster),
            journal=journal,
            tls=tls,
        )
        if options.adaptive:
            await self.adapt(handle, options.adapt_minimum, options.adapt_maximum)
        else:
            await self.scale(handle, options.workers)
        return handle

    # A SpecCluster whose scheduler runs in this process, as a LocalCluster: the local backend's
    # way to scale, adapt, count what is asked for and find the dashboard serves as it is.
    scale = LocalBackend.scale
    adapt = LocalBackend.adapt
    requested_workers = LocalBackend.requested_workers
    _dashboard_url = LocalBackend._dashboard_url

    async def close(self, handle: ClusterHandle):
        """Remove every job with one command, then close the scheduler (no job is cancelled twice).

        A submission under way returns during `cluster.close()`; its job is removed after it.
        """
        journal: JobJournal = handle.journal
        removed = set(journal.job_ids.values())
        await self.remove_jobs(handle.name, sorted(removed))
        journal.removed_all = True
        await handle.cluster.close()
        late = set(journal.job_ids.values()) - removed
        if late:
            await self.remove_jobs(handle.name, sorted(late))
        await asyncio.to_thread(shutil.rmtree, self._tls_directory(handle.name), True)

    async def reattach(self, record: ClusterRecord) -> None:
        """The scheduler died with the old server: remove every job of the cluster, never reattach."""
        job_ids = list(record.backend_state.get("jobs", {}).values())
        await self.remove_jobs(record.id, job_ids)
        await asyncio.to_thread(shutil.rmtree, self._tls_directory(record.id), True)
        self.log.warning("Removed the %d recorded job(s) of %s cluster %s", len(job_ids), self.name, record.id)
        return None

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        if handle.cluster.scheduler.status.name in ("closing", "closed", "failed"):  # its idle timeout
            raise ClusterGone(f"the scheduler of {handle.name} closed")
        connected = workers_from_identity(await handle.cluster.scheduler_comm.identity())
        journal: JobJournal = handle.journal
        names = list(handle.cluster.worker_spec)
        journal.forget_except(names)
        connected_names = {worker.name for worker in connected}
        asked = {
            name: job_id
            for name, job_id in journal.job_ids.items()
            if name not in connected_names and not (name in journal.states and journal.states[name].ended)
        }
        if asked and time.monotonic() - journal.queried_at >= self.settings.get("query_interval", 1):
            journal.queried_at = time.monotonic()
            states = await self.query_jobs(handle.name, list(asked.values()))
            for name, job_id in asked.items():
                state = states.get(job_id)
                if state is None:
                    continue
                if state.state == "failed":  # first seen ended: the error log tells why, once
                    state = with_log_tail(state, await self._read_log(handle.name, job_id, error=True))
                journal.states[name] = state
        return make_batch_workers(journal.worker_jobs(names), connected)

    def backend_state(self, handle: ClusterHandle) -> dict:
        return handle.journal.to_state()

    def connect_recipe(self, handle: ClusterHandle) -> ConnectRecipe:
        """With TLS, the notebook's client presents the cluster's certificate too."""
        if handle.tls is None:
            return super().connect_recipe(handle)
        return tls_client_recipe(handle.scheduler_address, handle.tls)

    def _tls_directory(self, cluster_id: str) -> Path:
        return Path(self.log_directory) / f"tls-{cluster_id}"

    async def logs(self, handle: ClusterHandle) -> dict[str, str]:
        """The scheduler's and workers' logs, then each job's output and error logs."""
        logs = await super().logs(handle)
        for job_id in handle.journal.job_ids.values():
            output = await self._read_log(handle.name, job_id, error=False)
            error = await self._read_log(handle.name, job_id, error=True)
            logs[job_log_key(job_id)] = "\n".join(filter(None, [error, output]))
        return logs

    async def _read_log(self, cluster_id: str, job_id: str, error: bool) -> str:
        path = self.job_log_paths(cluster_id, job_id, self.log_directory)[1 if error else 0]

        def tail() -> str:
            try:
                with open(path, errors="replace") as file:
                    return "".join(file.readlines()[-JOB_LOG_LINES:])
            except OSError:
                return ""

        return await asyncio.to_thread(tail)

    async def run_command(self, *command: str, check: bool = True) -> str:
        """Run a batch system command; its output, or a `BackendError` with its own message."""
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                stdin=asyncio.subprocess.DEVNULL,
            )
        except FileNotFoundError:
            raise BackendError(
                f"{command[0]} is not installed on this server (PATH={os.environ.get('PATH')})", unavailable=True
            ) from None
        stdout, stderr = await process.communicate()
        if check and process.returncode != 0:
            message = stderr.decode(errors="replace").strip() or stdout.decode(errors="replace").strip()
            raise BackendError(f"{command[0]} failed (exit {process.returncode}): {message}", unavailable=True)
        return stdout.decode(errors="replace")
