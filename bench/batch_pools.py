"""Dask on the test HTCondor pool and SLURM cluster: our REST API against dask-jobqueue called directly.

Starts the test pools (tests/batch: a personal HTCondor pool and a single-node SLURM cluster on
127.0.0.1) and a real `jupyter server` with an `htcondor` and a `slurm` template, then measures:

- create-to-first-worker, alternating in one run (per batch system ours then direct, the next
  round the other way round, so drift of a busy machine hits both alike):
  - ours: `POST sciencelab/api/dask/clusters` (one worker), then `GET .../clusters/<id>` until
    `workers.running` is 1 (each GET refreshes the cluster's state: one queue query);
  - direct: `HTCondorCluster(...)` / `SLURMCluster(...)` in this process, `scale(1)`, until the
    worker has connected to the scheduler;
  the same worker (1 core, 1 GiB, loopback); the batch system's own latency is the floor of both.
  Goal: ours / direct <= 1.1.
- the state refresh of a cluster with 500 queued jobs: `GET .../clusters/<id>` (one `condor_q` or
  `squeue` for all 500 jobs, their states, the JSON of 500 workers) next to that one bare query.
  (The backends query at most once per `query_interval`, 1 s by default, however often they are
  asked: the polling GETs above see a worker connect at once, from the scheduler, without a query
  each. The templates measured here set it to 0.)
  HTCondor's 500 jobs ask for more memory than the pool has (Idle); SLURM's are submitted held.

Needs `make .stamps/htcondor .stamps/slurm` and root. Run with `make bench-batch`
(BENCH_ARGS="--rounds 10" for more rounds). `--smoke` (what `make test` runs) checks in about a
minute that all of it still works: one round without warm-up, 5 queued jobs, one query each.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dask_jobqueue import HTCondorCluster, SLURMCluster
from distributed import Client

from tests.batch import wait_until
from tests.batch.htcondor import HTCondorPool
from tests.batch.slurm import SlurmCluster
from tests.lab_server import LabServer

QUEUED_JOBS = 500
QUERY_REPEATS = 5
POLL = 0.1  # seconds between two GETs while waiting for the worker: as often as Client.wait_for_workers looks
LOOPBACK = {"interface": "lo", "scheduler_options": {"dashboard_address": "127.0.0.1:0"}}
# What a state refresh asks HTCondor for: the job, its state, and the reasons it is not running.
CONDOR_Q_ATTRIBUTES = (
    "ClusterId,ProcId,JobStatus,LastRejMatchReason,HoldReason,HoldReasonCode,HoldReasonSubCode,"
    "ExitCode,ExitBySignal,ExitSignal,RemoveReason"
)
SQUEUE_FORMAT = "JobID:|,State:|,Reason:|,exit_code:|"


def batch_template(backend: str, log_directory: Path, max_workers: int, **settings) -> dict:
    """The bench worker (1 core, 1 GiB) as a template; up to `max_workers` workers of up to 1000 GiB."""
    return {
        "backend": backend,
        "options": {
            "workers": {"default": 1, "minimum": 0, "maximum": max_workers},
            "memory": {"default": 1, "minimum": 1, "maximum": 1000},
            "walltime": {"default": 10, "minimum": 10, "maximum": 10},
        },
        "backend_settings": {"log_directory": str(log_directory), "interface": "lo", **settings},
    }


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


def ours_to_first_worker(server: LabServer, template: str, list_jobs) -> float:
    """Seconds from `POST .../clusters` until the API reports one connected worker; then deletes it."""
    start = time.perf_counter()
    response = server.request("POST", "sciencelab/api/dask/clusters", {"template": template, "options": {}})
    response.raise_for_status()
    path = f"sciencelab/api/dask/clusters/{response.json()['id']}"
    while server.request("GET", path).json()["workers"]["running"] < 1:
        time.sleep(POLL)
    elapsed = time.perf_counter() - start
    server.request("DELETE", path).raise_for_status()
    wait_until(lambda: not list_jobs(), 60, "the bench jobs leaving the queue")
    return elapsed


def median_seconds(call, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def refresh_with_queued_jobs(
    server: LabServer, template: str, options: dict, bare_query, list_jobs, queued_jobs: int, repeats: int
):
    """(median GET of a cluster with `queued_jobs` queued workers, median bare query, jobs seen) in seconds."""
    start = time.perf_counter()
    response = server.request(
        "POST",
        "sciencelab/api/dask/clusters",
        {"template": template, "options": {"workers": queued_jobs, **options}},
        timeout=300,
    )
    response.raise_for_status()
    path = f"sciencelab/api/dask/clusters/{response.json()['id']}"
    try:
        wait_until(
            lambda: (
                len(
                    [
                        w
                        for w in server.request("GET", path, timeout=300).json()["worker_list"]
                        if w["job_id"] and w["reason"] not in (None, "Submitted")
                    ]
                )
                == queued_jobs
            ),
            600,
            f"{queued_jobs} queued jobs with their state",
            interval=1,
        )
        print(f"{template}: {queued_jobs} jobs submitted and queued in {time.perf_counter() - start:.0f} s")
        seen = len(list_jobs())
        # The template's query_interval is 0: every GET queries the batch system.
        refresh = median_seconds(lambda: server.request("GET", path, timeout=300).raise_for_status(), repeats)
        query = median_seconds(bare_query, repeats)
    finally:
        server.request("DELETE", path, timeout=300).raise_for_status()
        wait_until(lambda: not list_jobs(), 300, "the removal of the queued jobs")
    return refresh, query, seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="first workers per way and batch system (default: 4)")
    parser.add_argument("--smoke", action="store_true", help="check that it runs: tiny sizes, figures meaningless")
    args = parser.parse_args()
    rounds, queued_jobs, query_repeats = (1, 5, 1) if args.smoke else (args.rounds, QUEUED_JOBS, QUERY_REPEATS)

    pool, slurm = HTCondorPool(), SlurmCluster()
    server = None
    try:
        for name, system in (("HTCondor pool", pool), ("SLURM cluster", slurm)):
            start = time.perf_counter()
            system.start()
            print(f"{name} started (a probe job run) in {time.perf_counter() - start:.1f} s")
        with tempfile.TemporaryDirectory(prefix="sciencelab-bench-batch-") as tmp:
            condor_logs, slurm_logs = pool.job_directory("bench"), Path(tmp) / "slurm-logs"
            slurm_logs.mkdir()
            env = slurm.env(pool.env())
            server = LabServer(
                Path(tmp) / "server",
                app="server",
                env=env,
                config={
                    "ClusterManager": {
                        "templates": {
                            "htcondor": batch_template("htcondor", condor_logs, 1, disk=100 / 1024),
                            "slurm": batch_template("slurm", slurm_logs, 1),
                            # For the state refresh: a query at every GET, SLURM's jobs held.
                            "htcondor-queued": batch_template(
                                "htcondor", condor_logs, queued_jobs, disk=100 / 1024, query_interval=0
                            ),
                            "slurm-queued": batch_template(
                                "slurm", slurm_logs, queued_jobs, job_extra_directives=["--hold"], query_interval=0
                            ),
                        }
                    }
                },
            ).start()
            os.environ.update({"PATH": env["PATH"], "SLURM_CONF": env["SLURM_CONF"]})  # for the direct peers

            ways = {
                "HTCondor": {
                    "ours": lambda: ours_to_first_worker(server, "htcondor", pool.jobs),
                    "HTCondorCluster": lambda: create_to_first_worker(
                        lambda: HTCondorCluster(
                            cores=1, memory="1GiB", disk="100MiB", log_directory=str(condor_logs), **LOOPBACK
                        ),
                        pool.jobs,
                    ),
                },
                "SLURM": {
                    "ours": lambda: ours_to_first_worker(server, "slurm", slurm.jobs),
                    "SLURMCluster": lambda: create_to_first_worker(
                        lambda: SLURMCluster(
                            cores=1, memory="1GiB", walltime="00:10:00", log_directory=str(slurm_logs), **LOOPBACK
                        ),
                        slurm.jobs,
                    ),
                },
            }
            timings = {system: {label: [] for label in peers} for system, peers in ways.items()}
            if not args.smoke:
                for peers in ways.values():
                    for way in peers.values():
                        way()  # warm-up: imports, disk caches, the bokeh dashboard
            for round_ in range(rounds):
                for system, peers in ways.items():
                    order = list(peers) if round_ % 2 == 0 else list(reversed(peers))
                    for label in order:
                        timings[system][label].append(peers[label]())
                print(
                    f"round {round_ + 1}: "
                    + "; ".join(
                        ", ".join(f"{system} {label} {values[-1]:.2f} s" for label, values in timings[system].items())
                        for system in ways
                    ),
                    flush=True,
                )
            for system, by_label in timings.items():
                (_ours_label, ours_values), (peer, peer_values) = by_label.items()
                for label, values in by_label.items():
                    print(
                        f"{system} {label}: create-to-first-worker median {statistics.median(values):.2f} s "
                        f"(rounds: {', '.join(f'{v:.2f}' for v in values)})"
                    )
                ratio = statistics.median(ours_values) / statistics.median(peer_values)
                paired = statistics.median(a / b for a, b in zip(ours_values, peer_values, strict=True))
                print(
                    f"{system} ours / {peer}: ratio of medians {ratio:.3f}, median of per-round ratios "
                    f"{paired:.3f} (goal <= 1.1)"
                )

            condor_q = ["condor_q", "-allusers", "-json", "-attributes", CONDOR_Q_ATTRIBUTES]
            refresh, query, seen = refresh_with_queued_jobs(
                server,
                "htcondor-queued",
                {"memory": 1000},
                lambda: pool.tool(*condor_q),
                pool.jobs,
                queued_jobs,
                query_repeats,
            )
            print(
                f"HTCondor, {seen} idle jobs: a state refresh (GET of the cluster) median {refresh * 1000:.0f} ms; "
                f"its one condor_q alone median {query * 1000:.0f} ms"
            )
            refresh, query, seen = refresh_with_queued_jobs(
                server,
                "slurm-queued",
                {},
                lambda: slurm.tool("squeue", "--noheader", "--states=all", f"--Format={SQUEUE_FORMAT}"),
                slurm.jobs,
                queued_jobs,
                query_repeats,
            )
            print(
                f"SLURM, {seen} held jobs: a state refresh (GET of the cluster) median {refresh * 1000:.0f} ms; "
                f"its one squeue alone median {query * 1000:.0f} ms"
            )
    finally:
        if server is not None:
            server.stop()
        for system in (pool, slurm):
            system.stop()
            system.cleanup()


if __name__ == "__main__":
    main()
