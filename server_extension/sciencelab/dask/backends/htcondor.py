"""`htcondor`: Dask workers as HTCondor jobs, through dask-jobqueue's `HTCondorCluster`.

`make_htcondor_job_kwargs` builds every job argument (pure; the tests assert the submit description
dask-jobqueue renders from it): validated numbers (cores, memory, GPUs, walltime as
`allowed_job_duration`, after which HTCondor holds the job), the admin's settings, and the cluster's
id as the job attribute `SciencelabCluster`, by which one `condor_q` finds all of a cluster's jobs
and one `condor_rm` removes them. Jobs that left the queue are looked up in `condor_history`.

The `condor_*` tools must be on the server's PATH, configured for the pool's schedd.
"""

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import ClassVar

from dask_jobqueue.htcondor import HTCondorCluster

from ..batch import CONDOR_ATTRIBUTES, CONDOR_REMOVED, JobState, parse_condor_jobs
from ..credentials import TlsFiles
from ..errors import BackendError
from ..options import ClusterOptions
from .jobqueue import COMMON_SETTINGS, ONE_LINE, JobQueueBackend, make_common_job_kwargs

#: The job attribute that names the ScienceLab cluster a job belongs to.
CLUSTER_ATTRIBUTE = "SciencelabCluster"
JOB_ID = re.compile(r"^(\d+)\.(\d+)$")


def cluster_constraint(cluster_id: str) -> str:
    """The ClassAd constraint matching every job of a cluster (the id is our own hex, never a user's)."""
    return f'{CLUSTER_ATTRIBUTE} == "{cluster_id}"'


def job_ids_constraint(job_ids: Sequence[str]) -> str:
    """The constraint matching the jobs `job_ids` ("<ClusterId>.<ProcId>", as condor_submit made them)."""
    clauses = []
    for job_id in job_ids:
        match = JOB_ID.match(job_id)
        if match is None:
            raise ValueError(f"not an HTCondor job id: {job_id!r}")
        clauses.append(f"(ClusterId == {match[1]} && ProcId == {match[2]})")
    return " || ".join(clauses) or "false"


def make_htcondor_job_kwargs(
    cluster_id: str, options: ClusterOptions, settings: Mapping, log_directory: str, tls: TlsFiles
) -> dict:
    """The `HTCondorCluster` job arguments of a cluster (pure).

    :param options: validated numbers and an admin-listed environment.
    :param settings: the template's admin-only `backend_settings`.
    :param tls: the cluster's certificate files on this server, shipped with every job.
    """
    directives = dict(settings.get("job_extra_directives", {}))
    if "accounting_group" in settings:
        directives["accounting_group"] = settings["accounting_group"]
    if "container_image" in settings:
        directives["universe"] = "container"
        directives["container_image"] = settings["container_image"]
    if options.gpus:
        directives["request_gpus"] = options.gpus
    directives["allowed_job_duration"] = options.walltime * 60
    # Shipped with the job into its scratch directory, where the worker finds them by name; the
    # worker's own files (its spill space) are not shipped back.
    directives["should_transfer_files"] = "YES"
    directives["transfer_input_files"] = f"{tls.cert},{tls.key}"
    directives["transfer_output_files"] = '""'
    worker_tls = TlsFiles(cert=PurePath(tls.cert).name, key=PurePath(tls.key).name)
    directives[f"MY.{CLUSTER_ATTRIBUTE}"] = f'"{cluster_id}"'
    return {
        **make_common_job_kwargs(options, settings, log_directory, worker_tls),
        "disk": int(settings.get("disk", 1) * 2**30),
        "job_extra_directives": directives,
    }


class HTCondorBackend(JobQueueBackend):
    """Clusters whose workers are jobs of an HTCondor pool."""

    name = "htcondor"
    jobqueue_cluster = HTCondorCluster
    settings_schema: ClassVar[dict] = {
        "type": "object",
        "properties": {
            **COMMON_SETTINGS,
            "job_extra_directives": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Za-z+][A-Za-z0-9_.+]*$"},
                "additionalProperties": {"anyOf": [ONE_LINE, {"type": "number"}, {"type": "boolean"}]},
                "description": 'Extra submit commands, e.g. {"+JobFlavour": \'"espresso"\', "requirements": '
                "'OpSysAndVer == \"AlmaLinux9\"'}.",
            },
            "accounting_group": {**ONE_LINE, "description": "The jobs' accounting_group."},
            "container_image": {
                **ONE_LINE,
                "description": "Run the workers in this container image (universe = container).",
            },
            "disk": {"type": "number", "exclusiveMinimum": 0, "description": "Disk per job in GiB (default 1)."},
        },
        "additionalProperties": False,
    }

    def job_kwargs(self, cluster_id: str, options: ClusterOptions, log_directory: str, tls: TlsFiles) -> dict:
        return make_htcondor_job_kwargs(cluster_id, options, self.settings, log_directory, tls)

    def job_log_paths(self, cluster_id: str, job_id: str, log_directory: str) -> tuple[str, str]:
        # dask-jobqueue's Output and Error: $(LogDirectory)/worker-$F(MY.JobId).out and .err
        return f"{log_directory}/worker-{job_id}.out", f"{log_directory}/worker-{job_id}.err"

    async def query_jobs(self, cluster_id: str, job_ids: Sequence[str]) -> dict[str, JobState]:
        states = parse_condor_jobs(await self._condor_q(cluster_constraint(cluster_id)))
        missing = [job_id for job_id in job_ids if job_id not in states]
        if missing:  # ended: the history knows how (once per job: ended states are kept)
            states.update(
                parse_condor_jobs(
                    await self.run_command(
                        "condor_history",
                        "-json",
                        "-attributes",
                        ",".join(CONDOR_ATTRIBUTES),
                        "-match",
                        str(len(missing)),
                        "-constraint",
                        f"{cluster_constraint(cluster_id)} && ({job_ids_constraint(missing)})",
                    )
                )
            )
        for job_id in missing:
            states.setdefault(job_id, JobState("finished", "Left the queue", "condor_history has no record of it"))
        return states

    async def remove_jobs(self, cluster_id: str, job_ids: Sequence[str]):
        constraint = cluster_constraint(cluster_id)
        if job_ids:  # recorded ids, should a job have lost its attribute (an admin's directive)
            constraint = f"{constraint} || {job_ids_constraint(job_ids)}"
        # condor_rm exits 1 when no job matches: the query below is the judge.
        await self.run_command("condor_rm", "-constraint", constraint, check=False)
        left = parse_condor_jobs(await self._condor_q(f"({constraint}) && JobStatus != {CONDOR_REMOVED}"))
        if left:
            raise BackendError(f"condor_rm left job(s) {', '.join(sorted(left))} of cluster {cluster_id} in the queue")

    async def _condor_q(self, constraint: str) -> str:
        return await self.run_command(
            "condor_q", "-allusers", "-json", "-attributes", ",".join(CONDOR_ATTRIBUTES), "-constraint", constraint
        )
