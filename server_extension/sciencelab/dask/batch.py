"""Batch jobs as Dask workers (pure): each job's state in the batch system's own words.

The HTCondor and SLURM backends submit one job per Dask worker. At every refresh they ask the batch
system once (`condor_q` for the cluster's jobs, `squeue` by the cluster's job name) and turn the answer
into per-worker states here:

- `queued`: waiting for a slot, with the batch system's reason (HTCondor: Idle and the negotiator's
  `LastRejMatchReason`; SLURM: PENDING and its reason such as Resources or Priority);
- `held`: HTCondor's Held with `HoldReason`, SLURM's user or admin hold and suspended jobs;
- `running`: the job started, its worker has not connected yet;
- `finished` / `failed`: the job ended (exit code, signal, or the batch system's verdict), or the
  batch system refused it at submission (its own message).

`connected` comes from the scheduler, not from the batch system.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .clusters import WorkerInfo

#: The attributes a refresh asks `condor_q` and `condor_history` for.
CONDOR_ATTRIBUTES = (
    "ClusterId",
    "ProcId",
    "JobStatus",
    "LastRejMatchReason",
    "HoldReason",
    "HoldReasonCode",
    "HoldReasonSubCode",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "RemoveReason",
)
#: `squeue --Format` fields, each ended by `|` (no padding, no truncation): id, state, reason, wait status.
SQUEUE_FIELDS = ("JobID", "State", "Reason", "exit_code")
SQUEUE_FORMAT = ",".join(f"{field}:|" for field in SQUEUE_FIELDS)

# HTCondor's JobStatus numbers.
CONDOR_IDLE, CONDOR_RUNNING, CONDOR_REMOVED, CONDOR_COMPLETED, CONDOR_HELD, CONDOR_TRANSFERRING, CONDOR_SUSPENDED = (
    1,
    2,
    3,
    4,
    5,
    6,
    7,
)
# SLURM job states by what they mean for a worker; PENDING is queued unless its reason is a hold.
SLURM_RUNNING = {"RUNNING", "CONFIGURING", "RESIZING", "SIGNALING", "STAGE_OUT"}
SLURM_PAUSED = {"SUSPENDED", "STOPPED"}
SLURM_HOLD_REASONS = {"JobHeldUser", "JobHeldAdmin"}
SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"}
# How many lines of a failed job's error log its detail shows.
LOG_TAIL_LINES = 10


@dataclass(frozen=True)
class JobState:
    """What the batch system says about one job: a worker state and, where known, why."""

    state: str  # queued, held, running, finished or failed
    reason: str | None = None
    detail: str | None = None

    @property
    def ended(self) -> bool:
        """Finished and failed jobs never change again: they need no more queries."""
        return self.state in ("finished", "failed")


@dataclass(frozen=True)
class WorkerJob:
    """One worker of a batch cluster and its job: not submitted yet (`job_id` None) or submitted."""

    name: str
    job_id: str | None = None
    job: JobState | None = None  # the latest state known; None until the first query after submission


def htcondor_job_state(ad: Mapping) -> JobState:
    """The state of a job from its `condor_q -json` (or `condor_history -json`) ad."""
    status = ad.get("JobStatus")
    if status == CONDOR_IDLE:
        rejected = (ad.get("LastRejMatchReason") or "").strip()
        return JobState("queued", "Idle", f"HTCondor found no slot for it: {rejected}" if rejected else None)
    if status in (CONDOR_RUNNING, CONDOR_TRANSFERRING):
        return JobState("running", "Running")
    if status == CONDOR_HELD:
        code = ad.get("HoldReasonCode")
        detail = (
            f"HoldReasonCode {code}, HoldReasonSubCode {ad.get('HoldReasonSubCode', 0)}" if code is not None else None
        )
        return JobState("held", (ad.get("HoldReason") or "Held").strip(), detail)
    if status == CONDOR_SUSPENDED:
        return JobState("held", "Suspended")
    if status == CONDOR_REMOVED:
        return JobState("failed", "Removed", (ad.get("RemoveReason") or "").strip() or None)
    if status == CONDOR_COMPLETED:
        if ad.get("ExitBySignal"):
            return JobState("failed", f"killed by signal {ad.get('ExitSignal')}")
        code = ad.get("ExitCode")
        return JobState("finished" if code == 0 else "failed", f"exit code {code}")
    return JobState("queued", f"JobStatus {status}")


def slurm_job_state(state: str, reason: str, wait_status: str) -> JobState:
    """The state of a job from one `squeue` line: its state, reason and raw wait status (`exit_code`)."""
    reason = reason if reason and reason != "None" else None
    if state in SLURM_WAITING:
        return JobState(
            "held" if reason in SLURM_HOLD_REASONS else "queued",
            reason or state,
            f"{state} ({reason})" if reason else None,
        )
    if state in SLURM_RUNNING:
        return JobState("running", "Running")
    if state in SLURM_PAUSED:
        return JobState("held", state.capitalize(), f"{state} ({reason})" if reason else None)
    if state in ("COMPLETED", "COMPLETING", "FAILED"):
        status = int(wait_status) if wait_status.isdigit() else 0
        if status & 0x7F:
            return JobState("failed", f"killed by signal {status & 0x7F}", state)
        code = status >> 8
        if code == 0 and state != "FAILED":
            return JobState("finished", "exit code 0")
        return JobState("failed", f"exit code {code}", f"{state} ({reason})" if reason else state)
    # TIMEOUT, OUT_OF_MEMORY, CANCELLED, NODE_FAIL, PREEMPTED, DEADLINE, BOOT_FAIL: SLURM's verdict.
    return JobState("failed", state, f"{state} ({reason})" if reason else None)


def parse_condor_jobs(output: str) -> dict[str, JobState]:
    """Job id ("<ClusterId>.<ProcId>") -> state, from `condor_q -json` or `condor_history -json` output.

    `condor_q` prints nothing at all when no job matches.
    """
    ads = json.loads(output) if output.strip() else []
    return {f"{ad['ClusterId']}.{ad['ProcId']}": htcondor_job_state(ad) for ad in ads}


def parse_squeue_jobs(output: str) -> dict[str, JobState]:
    """Job id -> state, from `squeue --noheader --Format=<SQUEUE_FORMAT>` output."""
    jobs = {}
    for line in output.splitlines():
        fields = line.split("|")
        if len(fields) > len(SQUEUE_FIELDS):
            job_id, state, reason, wait_status = fields[: len(SQUEUE_FIELDS)]
            jobs[job_id] = slurm_job_state(state, reason, wait_status)
    return jobs


def submission_refusal(message: str) -> JobState:
    """A job the batch system refused at submission, from dask-jobqueue's error for the submit command.

    dask-jobqueue raises `RuntimeError` with the command, its exit code, stdout and stderr; the reason
    is the batch system's first line, the most specific ("Memory specification can not be satisfied"),
    the detail all of its stderr.
    """
    stderr = message.split("stderr:", 1)[1] if "stderr:" in message else message
    lines = []
    for line in stderr.strip().splitlines():
        for prefix in ("sbatch: error: ", "ERROR: "):
            line = line.removeprefix(prefix)
        if line.strip():
            lines.append(line.strip())
    return JobState("failed", lines[0] if lines else "the batch system refused the job", "\n".join(lines) or None)


def with_log_tail(job: JobState, log: str) -> JobState:
    """A failed job's state with the last lines of its error log added to the detail."""
    tail = "\n".join(log.rstrip().splitlines()[-LOG_TAIL_LINES:])
    if not tail:
        return job
    return replace(job, detail="\n".join(filter(None, [job.detail, f"Last lines of the error log:\n{tail}"])))


def job_log_key(job_id: str) -> str:
    """The key of a job's log in the cluster's logs (`GET .../clusters/<id>/logs`)."""
    return f"job {job_id}"


def make_batch_workers(jobs: Sequence[WorkerJob], connected: Sequence[WorkerInfo]) -> list[WorkerInfo]:
    """Every worker of a batch cluster: connected ones with their metrics, the others with their job's state.

    :param jobs: the cluster's workers in order, each with its job id and latest job state.
    :param connected: the workers connected to the scheduler (`workers_from_identity`).
    """
    by_name = {worker.name: worker for worker in connected}
    workers = []
    for job in jobs:
        log = job_log_key(job.job_id) if job.job_id else None
        worker = by_name.pop(job.name, None)
        if worker is not None:
            workers.append(replace(worker, job_id=job.job_id, log=log))
        elif job.job is not None:
            workers.append(
                WorkerInfo(
                    name=job.name,
                    state=job.job.state,
                    reason=job.job.reason,
                    detail=job.job.detail,
                    job_id=job.job_id,
                    log=log,
                )
            )
        elif job.job_id is not None:
            workers.append(WorkerInfo(name=job.name, state="queued", reason="Submitted", job_id=job.job_id, log=log))
        else:
            workers.append(WorkerInfo(name=job.name, state="pending", reason="Submitting"))
    # Workers the scheduler knows but no job of ours started (retiring, or connected by hand).
    return workers + list(by_name.values())
