"""The batch systems' own costs, the floor under ScienceLab's HTCondor and SLURM backends.

Starts the test pools (tests/batch: a personal HTCondor pool and a single-node SLURM cluster on
127.0.0.1) and measures, with dask-jobqueue called directly:

- create-to-first-worker: `HTCondorCluster(...)` / `SLURMCluster(...)`, `scale(1)`, until the
  worker has connected to the scheduler (median of the rounds, pools alternating);
- one queue query with 500 queued jobs: `condor_q -allusers -json` (500 idle jobs no slot can run)
  and `squeue` (500 held jobs), the one query per refresh the batch-aware worker states make.

Needs `make .stamps/htcondor .stamps/slurm` and root. Run with `make bench-batch`
(BENCH_ARGS="--rounds 10" for more rounds).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dask_jobqueue import HTCondorCluster, SLURMCluster  # noqa: E402
from distributed import Client  # noqa: E402

from tests.batch import wait_until  # noqa: E402
from tests.batch.htcondor import HTCondorPool  # noqa: E402
from tests.batch.slurm import SlurmCluster  # noqa: E402

QUEUED_JOBS = 500
QUERY_REPEATS = 5
LOOPBACK = {"interface": "lo", "scheduler_options": {"dashboard_address": "127.0.0.1:0"}}
# What a state refresh asks HTCondor for: the job, its state, and the reasons it is not running.
CONDOR_Q_ATTRIBUTES = "ClusterId,ProcId,JobStatus,EnteredCurrentStatus,HoldReason,HoldReasonCode,LastRejMatchReason"


def create_to_first_worker(make_cluster, list_jobs) -> float:
    """Seconds from creating the cluster until its first worker has connected; then closes it."""
    start = time.perf_counter()
    cluster = make_cluster()
    try:
        cluster.scale(1)
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=300)
            elapsed = time.perf_counter() - start
    finally:
        cluster.close()
    wait_until(lambda: not list_jobs(), 60, "the bench jobs leaving the queue")
    return elapsed


def median_query_seconds(query) -> float:
    timings = []
    for _ in range(QUERY_REPEATS):
        start = time.perf_counter()
        query()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def htcondor_query_with_queued_jobs(pool: HTCondorPool) -> tuple[float, int]:
    submit = pool.job_directory("queued") / "queued.sub"
    submit.write_text(
        "executable = /bin/true\n"
        f"request_memory = {pool.memory_mb * 64}\n"  # no slot has that: every job stays idle
        f"queue {QUEUED_JOBS}\n")
    pool.tool("condor_submit", str(submit))
    try:
        seen = len(pool.jobs("ClusterId"))
        seconds = median_query_seconds(lambda: pool.tool("condor_q", "-allusers", "-json", "-attributes",
                                                         CONDOR_Q_ATTRIBUTES))
    finally:
        pool.tool("condor_rm", "-all")
        wait_until(lambda: not pool.jobs(), 120, "the removal of the queued jobs")
    return seconds, seen


def slurm_query_with_queued_jobs(cluster: SlurmCluster, log_dir: Path) -> tuple[float, int]:
    for index in range(QUEUED_JOBS):
        cluster.tool("sbatch", "--hold", f"--job-name=queued-{index}", f"--output={log_dir}/queued-%j.out",
                     "--wrap=true")
    try:
        seen = len(cluster.jobs())
        seconds = median_query_seconds(cluster.jobs)
    finally:
        cluster.tool("scancel", "--partition=debug")
        wait_until(lambda: not cluster.jobs(), 120, "the cancellation of the queued jobs")
    return seconds, seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="first workers per batch system (default: 4)")
    args = parser.parse_args()

    pool, slurm = HTCondorPool(), SlurmCluster()
    try:
        for name, system in (("HTCondor pool", pool), ("SLURM cluster", slurm)):
            start = time.perf_counter()
            system.start()
            print(f"{name} started (a probe job run) in {time.perf_counter() - start:.1f} s")
        with tempfile.TemporaryDirectory(prefix="sciencelab-bench-slurm-") as slurm_logs:
            os.environ["PATH"] = pool.env()["PATH"]
            os.environ["SLURM_CONF"] = slurm.env()["SLURM_CONF"]
            peers = {
                "HTCondorCluster": (lambda: HTCondorCluster(
                    cores=1, memory="1GiB", disk="100MiB",
                    log_directory=str(pool.job_directory(f"bench-{time.time_ns()}")), **LOOPBACK), pool.jobs),
                "SLURMCluster": (lambda: SLURMCluster(
                    cores=1, memory="1GiB", walltime="00:10:00", log_directory=slurm_logs, **LOOPBACK), slurm.jobs),
            }
            timings = {name: [] for name in peers}
            for round_ in range(args.rounds):
                # ABBA: drift on a shared machine hits both alike.
                order = list(peers) if round_ % 2 == 0 else list(reversed(peers))
                for name in order:
                    timings[name].append(create_to_first_worker(*peers[name]))
            for name, values in timings.items():
                rounds = ", ".join(f"{value:.2f}" for value in values)
                print(f"{name}: create-to-first-worker median {statistics.median(values):.2f} s (rounds: {rounds})")

            seconds, seen = htcondor_query_with_queued_jobs(pool)
            print(f"condor_q -allusers -json with {seen} queued jobs: median {seconds * 1000:.0f} ms")
            seconds, seen = slurm_query_with_queued_jobs(slurm, Path(slurm_logs))
            print(f"squeue with {seen} queued jobs: median {seconds * 1000:.0f} ms")
    finally:
        for system in (pool, slurm):
            system.stop()
            system.cleanup()


if __name__ == "__main__":
    main()
