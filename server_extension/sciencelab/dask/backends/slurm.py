"""`slurm`: Dask workers as SLURM jobs, through dask-jobqueue's `SLURMCluster`.

`make_slurm_job_kwargs` builds every job argument (pure; the tests assert the batch script
dask-jobqueue renders from it): validated numbers (cores, memory, GPUs as `--gres=gpu:N`, walltime
in minutes), the admin's partition, account and directives, and the job name `sciencelab-<cluster
id>`, by which one `squeue` finds all of a cluster's jobs and one `scancel` removes them. Without an
accounting database, ended jobs are known only while `squeue --states=all` lists them (MinJobAge).

The SLURM client tools must be on the server's PATH (and `SLURM_CONF` set where the cluster needs it).
"""

from collections.abc import Mapping, Sequence
from typing import ClassVar

from dask_jobqueue.slurm import SLURMCluster

from ..batch import SQUEUE_FORMAT, JobState, parse_squeue_jobs
from ..credentials import TlsFiles
from ..errors import BackendError
from ..options import ClusterOptions
from .jobqueue import COMMON_SETTINGS, ONE_LINE, JobQueueBackend, make_common_job_kwargs

# States of a job that still holds or waits for resources (`squeue --states`).
LIVE_STATES = "PENDING,RUNNING,SUSPENDED,CONFIGURING,REQUEUED,REQUEUE_HOLD,REQUEUE_FED,RESIZING,SIGNALING,STOPPED"


def slurm_job_name(cluster_id: str) -> str:
    """The name of every job of a cluster (the id is our own hex, never a user's)."""
    return f"sciencelab-{cluster_id}"


def make_slurm_job_kwargs(
    cluster_id: str, options: ClusterOptions, settings: Mapping, log_directory: str, tls: TlsFiles
) -> dict:
    """The `SLURMCluster` job arguments of a cluster (pure).

    :param options: validated numbers and an admin-listed environment.
    :param settings: the template's admin-only `backend_settings`.
    :param tls: the cluster's certificate files, which the jobs read where they are (shared file system).
    """
    directives = list(settings.get("job_extra_directives", []))
    if options.gpus:
        directives.append(f"--gres=gpu:{options.gpus}")
    return {
        **make_common_job_kwargs(options, settings, log_directory, tls),
        "job_name": slurm_job_name(cluster_id),
        "queue": settings.get("partition"),
        "account": settings.get("account"),
        "walltime": str(options.walltime),  # minutes
        "job_extra_directives": directives,
    }


class SlurmBackend(JobQueueBackend):
    """Clusters whose workers are jobs of a SLURM cluster."""

    name = "slurm"
    jobqueue_cluster = SLURMCluster
    settings_schema: ClassVar[dict] = {
        "type": "object",
        "properties": {
            **COMMON_SETTINGS,
            "partition": {**ONE_LINE, "description": "The jobs' partition (#SBATCH -p)."},
            "account": {**ONE_LINE, "description": "The account the jobs are charged to (#SBATCH -A)."},
            "job_extra_directives": {
                "type": "array",
                "items": {**ONE_LINE, "pattern": "^-"},
                "description": 'Extra #SBATCH options, e.g. ["--qos=interactive", "--constraint=avx2"].',
            },
        },
        "additionalProperties": False,
    }

    def job_kwargs(self, cluster_id: str, options: ClusterOptions, log_directory: str, tls: TlsFiles) -> dict:
        return make_slurm_job_kwargs(cluster_id, options, self.settings, log_directory, tls)

    def job_log_paths(self, cluster_id: str, job_id: str, log_directory: str) -> tuple[str, str]:
        # dask-jobqueue's `#SBATCH -o <log_directory>/<job name>-%J.out` (and -e ... .err)
        stem = f"{log_directory}/{slurm_job_name(cluster_id)}-{job_id}"
        return f"{stem}.out", f"{stem}.err"

    async def query_jobs(self, cluster_id: str, job_ids: Sequence[str]) -> dict[str, JobState]:
        states = parse_squeue_jobs(await self._squeue(cluster_id, "all"))
        for job_id in job_ids:
            states.setdefault(
                job_id,
                JobState(
                    "finished",
                    "Left the queue",
                    "SLURM keeps ended jobs for MinJobAge only, and has no accounting database here to ask",
                ),
            )
        return states

    async def remove_jobs(self, cluster_id: str, job_ids: Sequence[str]):
        await self.run_command("scancel", f"--name={slurm_job_name(cluster_id)}")
        if job_ids:  # recorded ids, should a job have been renamed
            await self.run_command("scancel", *job_ids)
        left = parse_squeue_jobs(await self._squeue(cluster_id, LIVE_STATES))
        if left:
            raise BackendError(f"scancel left job(s) {', '.join(sorted(left))} of cluster {cluster_id} in the queue")

    async def _squeue(self, cluster_id: str, states: str) -> str:
        return await self.run_command(
            "squeue",
            "--noheader",
            f"--states={states}",
            f"--name={slurm_job_name(cluster_id)}",
            f"--Format={SQUEUE_FORMAT}",
        )
