"""What the `htcondor` and `slurm` backends share: dask-jobqueue clusters whose workers are batch jobs.

As with `local`, the scheduler runs in the Jupyter server's event loop (dask-jobqueue's own design,
`SpecClusterBackend`): it ends with the server, its idle timeout closes it, and its dashboard is
reached through jupyter-server-proxy at `<base_url>proxy/<port>/status`. Each worker is one batch
job. Scheduler, workers and clients speak TLS with the cluster's own certificate, which lives beside
the job logs (`cluster_directory`) where the jobs read it.

Three things dask-jobqueue does not do, done here:

- Every job id is written to the cluster's record on disk as soon as the submit command returns
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
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from distributed.deploy.spec import ProcessInterface
from jupyter_core.paths import jupyter_data_dir

from ..batch import JobState, WorkerJob, job_log_key, make_batch_workers, submission_refusal, with_log_tail
from ..clusters import ClusterRecord, WorkerInfo, workers_from_identity
from ..credentials import TlsFiles, make_security
from ..errors import BackendError, ClusterGone
from ..options import ClusterOptions
from .base import ClusterHandle
from .spec_cluster import SpecClusterBackend, SpecClusterHandle

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
    "scheduler_port": {
        "type": "integer",
        "minimum": 1,
        "maximum": 65535,
        "description": "Port the scheduler listens on, with scheduler_contact_host, when the batch nodes "
        "reach this server through a fixed forwarded port (default: a free port, the same on both sides).",
    },
}


def worker_lifetime(walltime_minutes: int) -> int:
    """Seconds a worker lives: it retires gracefully before the batch system kills its job at the walltime.

    The margin is a tenth of the walltime, at least one minute and at most five.
    """
    walltime = walltime_minutes * 60
    return max(1, walltime - min(300, max(60, walltime // 10)))


def make_common_job_kwargs(
    options: ClusterOptions, settings: Mapping, log_directory: str, worker_tls: TlsFiles
) -> dict:
    """The dask-jobqueue job arguments both batch backends build the same way (pure).

    Numbers are validated options, strings the admin's settings; the worker's Python is the chosen
    environment's (admin-listed) or, with none listed, the server's own. Workers retire before the
    walltime (`--lifetime`), announce their GPUs as a resource, and speak TLS only, with the
    cluster's certificate as the job sees it (`worker_tls`).
    """
    worker_args = ["--lifetime", f"{worker_lifetime(options.walltime)}s"]
    if options.gpus:
        worker_args += ["--resources", f"GPU={options.gpus}"]
    worker_args += ["--tls-ca-file", worker_tls.cert, "--tls-cert", worker_tls.cert, "--tls-key", worker_tls.key]
    kwargs = {
        "cores": options.cores,
        "memory": options.memory_bytes,
        "processes": 1,  # one worker per job: a job's state is its worker's
        "python": options.environment.value if options.environment else sys.executable,
        "interface": settings.get("interface"),
        "protocol": "tls://",
        "log_directory": log_directory,
        "job_script_prologue": list(settings.get("prologue", [])),
        "worker_extra_args": worker_args,
        "death_timeout": settings.get("death_timeout", 60),
    }
    if "local_directory" in settings:
        kwargs["local_directory"] = settings["local_directory"]
    return kwargs


def make_scheduler_options(options: ClusterOptions, settings: Mapping, port: int | None = None) -> dict:
    """The in-process scheduler's options (pure): where it listens, its dashboard, its idle timeout.

    With `scheduler_contact_host`, the scheduler listens on `port` and tells workers to reach it at
    that host and port (its `contact_address`).
    """
    scheduler = {"dashboard_address": "127.0.0.1:0"}  # reached through jupyter-server-proxy only
    if "scheduler_host" in settings:
        scheduler["host"] = settings["scheduler_host"]
    if "scheduler_contact_host" in settings:
        scheduler["port"] = port
        scheduler["contact_address"] = f"tls://{settings['scheduler_contact_host']}:{port}"
    if options.idle_timeout:
        scheduler["idle_timeout"] = f"{options.idle_timeout * 60:g}s"
    return scheduler


class JobJournal:
    """The jobs of one cluster: their ids from the moment the submit command returns, and their states.

    `save` persists the ids (the manager writes the cluster's record); it runs as soon as the job's
    `start` returns, which is right after the submit command does.
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
    """Mixed into dask-jobqueue's job classes (`job_cls`): the journal learns each job id as soon as the
    job is submitted, and a refused submission becomes a failed worker rather than an error nobody sees.

    The worker's TLS comes from the job arguments our builders make (for HTCondor, the certificate
    shipped into the job's scratch directory), so the `security` dask-jobqueue hands every job is
    not passed on: it would add a second set of `--tls-*` arguments naming the server's paths.
    """

    def __init__(self, *args, journal: JobJournal, security=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.journal = journal

    async def start(self):
        try:
            await super().start()  # Job.start: the submit command, then ProcessInterface.start
        # The submit command failed (dask-jobqueue's RuntimeError carries its stderr), is missing, or
        # printed no job id (a job tagged with the cluster may exist: shutting down removes it).
        except (RuntimeError, OSError, ValueError) as error:
            self.journal.refused(self.name, submission_refusal(str(error)))
            # A worker that exists, failed: scaling down forgets it as it forgets any other.
            await ProcessInterface.start(self)
        else:
            self.journal.submitted(self.name, self.job_id)

    async def close(self):
        if self.journal.removed_all:  # every job of the cluster is gone already: no command per job
            await ProcessInterface.close(self)
        else:
            await super().close()


@dataclass
class BatchClusterHandle(SpecClusterHandle):
    journal: JobJournal = field(default=None)


def free_port() -> int:
    """A TCP port nothing listens on right now (a scheduler binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


class JobQueueBackend(SpecClusterBackend):
    """A dask-jobqueue cluster; subclasses name the cluster class and talk to their batch system."""

    #: dask-jobqueue's cluster class (`HTCondorCluster`, `SLURMCluster`)
    jobqueue_cluster: ClassVar[type]
    #: its job class with `RecordedJob`, given to the cluster as `job_cls`
    job_class: ClassVar[type]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        job = cls.jobqueue_cluster.job_cls
        cls.job_class = type(f"Recorded{job.__name__}", (RecordedJob, job), {"__module__": __name__})

    @abc.abstractmethod
    def job_kwargs(self, cluster_id: str, options: ClusterOptions, log_directory: str, tls: TlsFiles) -> dict:
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

    def cluster_directory(self, cluster_id: str) -> Path:
        # Where the jobs read the certificate: beside their logs, on the file system they share with
        # this server (SLURM), or shipped from there with each job (HTCondor).
        return Path(self.log_directory) / f"tls-{cluster_id}"

    async def create(self, cluster_id: str, options: ClusterOptions) -> ClusterHandle:
        journal = JobJournal(lambda: self.save_state(cluster_id, journal.to_state()))
        port = None
        if "scheduler_contact_host" in self.settings:
            port = self.settings.get("scheduler_port") or await asyncio.to_thread(free_port)
        tls = await self.new_credentials(cluster_id)
        job = self.job_kwargs(cluster_id, options, self.log_directory, tls)
        cluster = await self.jobqueue_cluster(
            name=cluster_id,
            asynchronous=True,
            interface=job.pop("interface"),  # the cluster gives both back to every job
            protocol=job.pop("protocol"),
            security=make_security(tls),  # the scheduler's, and the cluster's own connection to it
            scheduler_options=make_scheduler_options(options, self.settings, port),
            silence_logs=False,  # dask-jobqueue would otherwise reset the server's own logging levels
            job_cls=self.job_class,
            journal=journal,
            **job,
        )
        return BatchClusterHandle(
            cluster=cluster,
            name=cluster_id,
            scheduler_address=cluster.scheduler_address,
            dashboard_url=self.dashboard_url(cluster),
            journal=journal,
            tls=tls,
        )

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
        await self.remove_cluster_directory(handle.name)

    async def reattach(self, record: ClusterRecord) -> None:
        """The scheduler died with the old server: remove every job of the cluster, never reattach."""
        job_ids = list(record.backend_state.get("jobs", {}).values())
        await self.remove_jobs(record.id, job_ids)
        await self.remove_cluster_directory(record.id)
        self.log.warning("Removed the %d recorded job(s) of %s cluster %s", len(job_ids), self.name, record.id)
        return None

    async def workers(self, handle: ClusterHandle, requested: int) -> list[WorkerInfo]:
        if self.scheduler_ended(handle):
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
