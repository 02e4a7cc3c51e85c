"""The test pools run Dask: dask-jobqueue's own HTCondorCluster and SLURMCluster, no ScienceLab code.

Also pins down where each batch system says why a job does not run, which the batch-aware worker
states build on:

- HTCondor, idle job: `condor_q -json` gives `JobStatus` 1 (Idle) and, after a negotiation cycle,
  `LastRejMatchReason` ("no match found "); `condor_q -better-analyze <id>` says why, per step of
  the job's Requirements: "[5]  0  TARGET.Memory >= RequestMemory" (0 slots pass that step), then
  "No machines matched the jobs's constraints".
- HTCondor, held job: `condor_q -json` gives `JobStatus` 5 (Held), `HoldReason` (the text) and
  `HoldReasonCode` (HTCondor's number for the cause, 9 = UnableToOpenOutputStream here) and
  `HoldReasonSubCode` (an errno for some codes, 0 here).
- SLURM, pending job: `squeue --format=%T|%r` gives the state (PENDING, RUNNING, ...) and the
  reason ("Resources" while it waits for memory or CPUs; "None" once running). A request no node
  can ever satisfy never queues: sbatch exits 1 with "Requested node configuration is not
  available", which dask-jobqueue raises from `scale()`'s background submission.
"""

import os
import re

import pytest
from dask_jobqueue import HTCondorCluster, SLURMCluster
from distributed import Client

from . import wait_until

# Every test here runs real batch jobs; each worker takes seconds to start.
WORKER_TIMEOUT = 120
# Scheduler and workers stay on loopback; the dashboard too, on a free port.
LOOPBACK = {"interface": "lo", "scheduler_options": {"dashboard_address": "127.0.0.1:0"}}
IMPOSSIBLE_MEMORY = "1000GiB"  # far above the 16 GiB the test pools offer


def scale_compute_and_close(cluster, list_jobs):
    """Two workers, a computation across them, back to none, closed: the queue ends empty."""
    cluster.scale(2)
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=WORKER_TIMEOUT)
        squares = client.map(lambda x: x * x, range(10))
        assert client.submit(sum, squares).result() == 285
        assert len(client.has_what()) == 2
        cluster.scale(0)
        wait_until(lambda: not client.scheduler_info()["workers"], WORKER_TIMEOUT, "the workers leaving")
    cluster.close()
    wait_until(lambda: not list_jobs(), 30, "the cancelled jobs leaving the queue", describe=lambda: str(list_jobs()))


def test_htcondor_cluster_runs_workers_and_leaves_no_jobs(htcondor_pool, monkeypatch):
    monkeypatch.setenv("PATH", htcondor_pool.env()["PATH"])
    cluster = HTCondorCluster(
        cores=1, memory="1GiB", disk="100MiB", log_directory=str(htcondor_pool.job_directory("smoke")), **LOOPBACK
    )
    scale_compute_and_close(cluster, htcondor_pool.jobs)
    assert htcondor_pool.tool("condor_q", "-allusers", "-totals").stdout.count("0 jobs;") == 2


def test_slurm_cluster_runs_workers_and_leaves_no_jobs(slurm_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env()["SLURM_CONF"])
    cluster = SLURMCluster(cores=1, memory="1GiB", walltime="00:10:00", log_directory=str(tmp_path), **LOOPBACK)
    scale_compute_and_close(cluster, slurm_cluster.jobs)
    assert slurm_cluster.tool("squeue", "--noheader").stdout == ""


def test_htcondor_job_asking_too_much_memory_stays_idle_with_a_reason(htcondor_pool, monkeypatch):
    monkeypatch.setenv("PATH", htcondor_pool.env()["PATH"])
    cluster = HTCondorCluster(
        cores=1,
        memory=IMPOSSIBLE_MEMORY,
        disk="100MiB",
        log_directory=str(htcondor_pool.job_directory("impossible")),
        **LOOPBACK,
    )
    try:
        cluster.scale(1)
        [job] = wait_until(
            lambda: htcondor_pool.jobs("ClusterId", "ProcId", "JobStatus", "LastRejMatchReason"),
            WORKER_TIMEOUT,
            "the job entering the queue",
        )
        job_id = f"{job['ClusterId']}.{job['ProcId']}"
        # The negotiator has looked at it and found no slot: the reason lands in the job ad.
        [job] = wait_until(
            lambda: [j for j in htcondor_pool.jobs("JobStatus", "LastRejMatchReason") if "LastRejMatchReason" in j],
            60,
            "a negotiation cycle rejecting the job",
        )
        assert job == {"JobStatus": 1, "LastRejMatchReason": "no match found "}
        analysis = htcondor_pool.tool("condor_q", "-better-analyze", job_id).stdout
        # The step of the Requirements expression no slot passes, then the verdict.
        assert re.search(r"\]\s+0\s+TARGET\.Memory >= RequestMemory", analysis), analysis
        assert "No machines matched the jobs's constraints" in analysis, analysis
    finally:
        cluster.close()
    wait_until(lambda: not htcondor_pool.jobs(), 30, "the job's removal")


def test_htcondor_job_that_cannot_write_its_log_is_held_with_a_reason(htcondor_pool, monkeypatch):
    monkeypatch.setenv("PATH", htcondor_pool.env()["PATH"])
    unwritable = htcondor_pool.job_directory("unwritable")
    os.chown(unwritable, 0, 0)  # root's, mode 0755: the jobs' user cannot write there
    cluster = HTCondorCluster(cores=1, memory="1GiB", disk="100MiB", log_directory=str(unwritable), **LOOPBACK)
    try:
        cluster.scale(1)
        [job] = wait_until(
            lambda: [
                job for job in htcondor_pool.jobs("JobStatus", "HoldReason", "HoldReasonCode") if job["JobStatus"] == 5
            ],
            WORKER_TIMEOUT,
            "the job being held",
            describe=lambda: str(htcondor_pool.jobs()),
        )
        # dask-jobqueue streams the job's output back through the shadow, which cannot create the file.
        assert job["HoldReason"].endswith(": unable to establish standard output stream"), job
        assert job["HoldReasonCode"] == 9, job  # UnableToOpenOutputStream
    finally:
        cluster.close()
    wait_until(lambda: not htcondor_pool.jobs(), 30, "the job's removal")


def test_slurm_refuses_a_job_asking_more_memory_than_any_node_has(slurm_cluster):
    # Unlike HTCondor, SLURM refuses at submission what no node of the partition can ever run: the
    # job never enters the queue and sbatch's own message is the reason (dask-jobqueue raises it).
    result = slurm_cluster.tool("sbatch", "--mem=1000G", "--wrap=true", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "sbatch: error: Memory specification can not be satisfied",
        "sbatch: error: Batch job submission failed: Requested node configuration is not available",
    ]
    assert slurm_cluster.jobs() == []


def test_slurm_job_waiting_for_memory_is_pending_with_reason_resources(slurm_cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("SLURM_CONF", slurm_cluster.env()["SLURM_CONF"])
    # Two workers of 12 GiB on a 16 GiB node: one runs, the other waits for memory.
    cluster = SLURMCluster(cores=1, memory="12GiB", walltime="00:10:00", log_directory=str(tmp_path), **LOOPBACK)
    try:
        cluster.scale(2)
        jobs = wait_until(
            lambda: (
                (jobs := slurm_cluster.jobs())
                and sorted((j["state"], j["reason"]) for j in jobs) == [("PENDING", "Resources"), ("RUNNING", "None")]
                and jobs
            ),
            WORKER_TIMEOUT,
            "one job running and one pending for resources",
            describe=lambda: str(slurm_cluster.jobs()),
        )
        assert {job["name"] for job in jobs} == {"dask-worker"}
    finally:
        cluster.close()
    wait_until(lambda: not slurm_cluster.jobs(), 30, "the jobs' cancellation")


@pytest.fixture(autouse=True)
def _no_dask_config_from_home(monkeypatch, tmp_path):
    """Workers and clusters read no stray Dask configuration from the test user's home."""
    monkeypatch.setenv("DASK_CONFIG", str(tmp_path / "dask-config"))
