"""Dask clusters on the test HTCondor pool and SLURM cluster, through the REST API of a real `jupyter server`.

Each test runs against both batch systems where it applies: create, reach the workers, compute from
a real kernel with the inserted connect code, scale down, shut down; the states of jobs that cannot
run; restarts and crashes of the server. After every test the queue holds none of its jobs.
"""

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed import Client, Security

from ..dask_clusters import WORKERS_TIMEOUT, create_cluster, run_in_kernel, wait_for_workers
from ..lab_server import LabServer
from . import wait_until

IMPOSSIBLE_MEMORY = 1000  # GiB, far above the 16 GiB the test pools offer
QUEUE_TIMEOUT = 60  # seconds for removed or cancelled jobs to leave the queue


@dataclass
class BatchPool:
    """One of the test batch systems as these tests use it."""

    backend: str
    system: object  # HTCondorPool or SlurmCluster
    log_directory: Path

    def env(self) -> dict:
        return self.system.env()

    def job_ids(self) -> list[str]:
        """Every job in the queue (all users), as the batch system names them."""
        if self.backend == "htcondor":
            return [f"{job['ClusterId']}.{job['ProcId']}" for job in self.system.jobs("ClusterId", "ProcId")]
        return [job["id"] for job in self.system.jobs()]

    def wait_for_empty_queue(self):
        wait_until(
            lambda: not self.job_ids(),
            QUEUE_TIMEOUT,
            f"the {self.backend} queue emptying",
            describe=lambda: str(self.job_ids()),
        )
        if self.backend == "htcondor":
            assert self.system.tool("condor_q", "-allusers", "-totals").stdout.count("0 jobs;") == 2
        else:
            assert self.system.tool("squeue", "--noheader").stdout == ""


def template(backend: str, log_directory: Path, **settings) -> dict:
    return {
        "backend": backend,
        "options": {
            "workers": {"default": 1, "minimum": 0, "maximum": 4},
            "memory": {"default": 1, "minimum": 0.5, "maximum": IMPOSSIBLE_MEMORY},
            "walltime": {"default": 30, "minimum": 10, "maximum": 60},
        },
        "backend_settings": {"log_directory": str(log_directory), "interface": "lo", **settings},
    }


@pytest.fixture(
    params=[pytest.param("htcondor", marks=pytest.mark.htcondor), pytest.param("slurm", marks=pytest.mark.slurm)]
)
def pool(request, tmp_path) -> BatchPool:
    """The batch system of the test's parameter, with a log directory its jobs can write."""
    if request.param == "htcondor":
        system = request.getfixturevalue("htcondor_pool")
        log_directory = system.job_directory(f"logs-{time.time_ns()}")
    else:
        system = request.getfixturevalue("slurm_cluster")
        log_directory = tmp_path / "job-logs"  # SLURM jobs run as the submitting user (root here)
    pool = BatchPool(request.param, system, log_directory)
    yield pool
    pool.wait_for_empty_queue()


def start_server(pool: BatchPool, folder: Path, extra_templates: dict | None = None) -> LabServer:
    templates = {pool.backend: template(pool.backend, pool.log_directory), **(extra_templates or {})}
    return LabServer(
        folder,
        app="server",
        env={**pool.env(), "DASK_CONFIG": str(folder / "dask-config")},
        config={"ClusterManager": {"templates": templates, "refresh_interval": 0.5}},
    ).start()


@pytest.fixture
def server(pool, tmp_path):
    """A real `jupyter server` that submits to `pool`; stopped after the test (its clusters with it)."""
    server = start_server(pool, tmp_path / "server")
    yield server
    server.stop()


def get_cluster(server: LabServer, cluster_id: str) -> dict:
    response = server.request("GET", f"sciencelab/api/dask/clusters/{cluster_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_workers_in(server: LabServer, cluster_id: str, state: str, count: int) -> list[dict]:
    """Poll until `count` workers of the cluster are in `state` (each with its reason); return those."""

    def reached():
        workers = [w for w in get_cluster(server, cluster_id)["worker_list"] if w["state"] == state]
        return len(workers) == count and all(w["reason"] for w in workers) and workers

    return wait_until(
        reached,
        WORKERS_TIMEOUT,
        f"{count} {state} worker(s)",
        describe=lambda: json.dumps(get_cluster(server, cluster_id)["worker_list"], indent=1),
    )


def recorded_job_ids(server: LabServer) -> list[str]:
    """The job ids in the server's cluster records on disk."""
    records = json.loads((server.data_dir / "sciencelab" / "dask-clusters-default.json").read_text())["clusters"]
    return sorted(job for record in records for job in record["backend_state"].get("jobs", {}).values())


def test_cluster_computes_scales_down_and_leaves_no_job(pool, server, kernel):
    cluster = wait_for_workers(server, create_cluster(server, pool.backend, workers=2)["id"], 2)
    assert {w["state"] for w in cluster["worker_list"]} == {"connected"}
    job_ids = sorted(w["job_id"] for w in cluster["worker_list"])
    assert sorted(pool.job_ids()) == job_ids == recorded_job_ids(server)

    run_in_kernel(kernel, cluster["connect_code"])
    result = run_in_kernel(
        kernel,
        "print(len(client.scheduler_info()['workers']), sum(client.gather(client.map(lambda x: x * x, range(100)))))",
    )
    assert result.split() == ["2", "328350"]

    logs = server.request("GET", f"sciencelab/api/dask/clusters/{cluster['id']}/logs").json()
    for worker in cluster["worker_list"]:
        assert "distributed.worker" in logs[worker["log"]], logs.keys()

    assert server.request("PATCH", f"sciencelab/api/dask/clusters/{cluster['id']}", {"workers": 1}).status_code == 200
    cluster = wait_for_workers(server, cluster["id"], 1)
    wait_until(lambda: len(pool.job_ids()) == 1, QUEUE_TIMEOUT, "the scaled-down job leaving the queue")
    assert run_in_kernel(kernel, "print(client.submit(sum, [1, 2, 3]).result())").strip() == "6"

    run_in_kernel(kernel, "client.close()")
    assert server.request("DELETE", f"sciencelab/api/dask/clusters/{cluster['id']}").status_code == 204
    pool.wait_for_empty_queue()


def test_a_job_that_cannot_run_shows_the_batch_systems_reason(pool, server):
    cluster = create_cluster(server, pool.backend, workers=2, memory=IMPOSSIBLE_MEMORY)
    if pool.backend == "htcondor":
        # Idle in the queue; once the negotiator has looked, it says why.
        wait_for_workers_in(server, cluster["id"], "queued", 2)
        wait_until(
            lambda: any(
                "no match found" in (w["detail"] or "") for w in get_cluster(server, cluster["id"])["worker_list"]
            ),
            WORKERS_TIMEOUT,
            "the negotiator's reason",
        )
        workers = get_cluster(server, cluster["id"])["worker_list"]
        assert {w["reason"] for w in workers} == {"Idle"}
        assert len(pool.job_ids()) == 2
    else:
        # sbatch refuses it outright: no job, a failed worker with sbatch's own words.
        workers = wait_for_workers_in(server, cluster["id"], "failed", 2)
        assert {(w["reason"], w["detail"]) for w in workers} == {
            (
                "Memory specification can not be satisfied",
                "Memory specification can not be satisfied\n"
                "Batch job submission failed: Requested node configuration is not available",
            )
        }
        assert pool.job_ids() == [] and recorded_job_ids(server) == []
    assert get_cluster(server, cluster["id"])["workers"] == {"requested": 2, "pending": 2, "running": 0}
    assert server.request("DELETE", f"sciencelab/api/dask/clusters/{cluster['id']}").status_code == 204


def test_a_failed_job_shows_its_exit_code_and_error_log(pool, tmp_path):
    broken = template(pool.backend, pool.log_directory)
    broken["environments"] = [{"name": "missing", "value": "/nonexistent/bin/python"}]
    server = start_server(pool, tmp_path / "server", {"broken": broken})
    try:
        cluster = create_cluster(server, "broken", workers=1)
        [worker] = wait_for_workers_in(server, cluster["id"], "failed", 1)
        assert worker["reason"] == "exit code 127"
        assert "Last lines of the error log:" in worker["detail"]
        assert (
            "/nonexistent/bin/python: not found" in worker["detail"]
            or "/nonexistent/bin/python: No such file or directory" in worker["detail"]
        )
    finally:
        server.stop()


@pytest.mark.htcondor
def test_a_held_job_shows_its_hold_reason(htcondor_pool, tmp_path):
    pool = BatchPool("htcondor", htcondor_pool, htcondor_pool.job_directory(f"unwritable-{time.time_ns()}"))
    os.chown(pool.log_directory, 0, 0)  # root's, mode 0755: the jobs' user cannot write its output there
    server = start_server(pool, tmp_path / "server")
    try:
        cluster = create_cluster(server, "htcondor", workers=1)
        [worker] = wait_for_workers_in(server, cluster["id"], "held", 1)
        assert worker["reason"].endswith(": unable to establish standard output stream"), worker
        assert worker["detail"] == "HoldReasonCode 9, HoldReasonSubCode 0"
        summary = get_cluster(server, cluster["id"])
        assert summary["worker_states"] == {"held": 1}
    finally:
        server.stop()
    pool.wait_for_empty_queue()


@pytest.mark.htcondor
def test_at_most_one_condor_q_per_refresh_however_many_workers(htcondor_pool, tmp_path):
    """A counting `condor_q` first on the server's PATH: queries follow refreshes (at most one per
    second, the default `query_interval`), not workers, nor how often the API is asked."""
    counter = tmp_path / "bin"
    counter.mkdir()
    calls = tmp_path / "condor_q.calls"
    (counter / "condor_q").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {htcondor_pool.bin_dir}/condor_q "$@"\n')
    (counter / "condor_q").chmod(0o755)
    pool = BatchPool("htcondor", htcondor_pool, htcondor_pool.job_directory(f"count-{time.time_ns()}"))
    templates = {"htcondor": template("htcondor", pool.log_directory)}
    server = LabServer(
        tmp_path / "server",
        app="server",
        env={**pool.env(), "PATH": f"{counter}:{pool.env()['PATH']}", "DASK_CONFIG": str(tmp_path / "dask-config")},
        config={"ClusterManager": {"templates": templates, "refresh_interval": 0.5}},
    ).start()
    try:
        cluster = create_cluster(server, "htcondor", workers=4, memory=IMPOSSIBLE_MEMORY)
        wait_for_workers_in(server, cluster["id"], "queued", 4)
        before = len(calls.read_text().splitlines())
        deadline = time.monotonic() + 5  # 10 refreshes of a cluster with 4 idle workers, and 50 GETs
        while time.monotonic() < deadline:
            get_cluster(server, cluster["id"])
            time.sleep(0.1)
        queries = len(calls.read_text().splitlines()) - before
        assert 3 <= queries <= 7, f"{queries} condor_q calls in 5 s of refreshes of 4 workers"
    finally:
        server.stop()
    pool.wait_for_empty_queue()


@pytest.mark.slurm
def test_adaptive_cluster_keeps_its_minimum(slurm_cluster, tmp_path):
    pool = BatchPool("slurm", slurm_cluster, tmp_path / "job-logs")
    server = start_server(pool, tmp_path / "server")
    try:
        cluster = create_cluster(server, "slurm", adaptive=True, adapt_minimum=1, adapt_maximum=3)
        cluster = wait_for_workers(server, cluster["id"], 1)
        assert cluster["adapt"] == {"minimum": 1, "maximum": 3} and cluster["workers"]["requested"] == 1
        assert len(pool.job_ids()) == 1
        response = server.request("PATCH", f"sciencelab/api/dask/clusters/{cluster['id']}", {"workers": 2})
        assert response.status_code == 200 and response.json()["adapt"] is None
        wait_for_workers(server, cluster["id"], 2)
    finally:
        server.stop()
    pool.wait_for_empty_queue()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "crash"])
def test_restart_leaves_no_job_behind(pool, tmp_path, stop_signal):
    server = start_server(pool, tmp_path / "server")
    try:
        queued = create_cluster(server, pool.backend, workers=2, memory=IMPOSSIBLE_MEMORY)
        connected = create_cluster(server, pool.backend, workers=1)
        wait_for_workers(server, connected["id"], 1)
        if pool.backend == "htcondor":
            wait_for_workers_in(server, queued["id"], "queued", 2)
        # Every job in the queue is on disk before the server goes.
        wait_until(
            lambda: sorted(pool.job_ids()) == recorded_job_ids(server) and pool.job_ids(),
            30,
            "the records matching the queue",
            describe=lambda: f"{pool.job_ids()} {recorded_job_ids(server)}",
        )

        server.stop(stop_signal)
        if stop_signal == signal.SIGKILL:
            assert pool.job_ids(), "the crash should leave jobs for the restarted server to remove"
        server.start()

        # Batch clusters cannot outlive their scheduler: not listed again, none of their jobs left.
        assert server.request("GET", "sciencelab/api/dask/clusters").json() == []
        pool.wait_for_empty_queue()
        assert recorded_job_ids(server) == []
    finally:
        server.stop()


def connect_without_the_clusters_credentials(address: str) -> dict[str, str]:
    """Try the scheduler at `address` as another user would: no credentials, or another cluster's."""
    attempts = {
        "plain tcp": ("tcp://" + address.split("://")[1], {}),
        "tls without credentials": (address, {}),
        "another cluster's certificate": (address, {"security": Security.temporary()}),
    }
    results = {}
    for name, (target, kwargs) in attempts.items():
        try:
            with Client(target, timeout=5, **kwargs) as client:
                results[name] = f"connected to {len(client.scheduler_info()['workers'])} worker(s)"
        except Exception as error:
            results[name] = f"refused: {type(error).__name__}"
    return results


def test_only_the_clusters_own_certificate_reaches_its_scheduler(pool, server, kernel):
    cluster = wait_for_workers(server, create_cluster(server, pool.backend, workers=1)["id"], 1)
    # Workers are jobs that connected over TLS with the certificate shipped with them (HTCondor) or
    # read beside their logs (SLURM): both are one file only this account reads.
    assert cluster["scheduler_address"].startswith("tls://127.0.0.1:")
    folder = pool.log_directory / f"tls-{cluster['id']}"
    assert {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()} == {
        "cert.pem": 0o600,
        "key.pem": 0o600,
    }
    assert folder.stat().st_mode & 0o777 == 0o700
    assert f"tls_client_key={str(folder / 'key.pem')!r}" in cluster["connect_code"]

    refused = connect_without_the_clusters_credentials(cluster["scheduler_address"])
    assert all(result.startswith("refused: ") for result in refused.values()), refused

    run_in_kernel(kernel, cluster["connect_code"])
    assert run_in_kernel(kernel, "print(client.submit(sum, [1, 2, 3]).result())").strip() == "6"
    run_in_kernel(kernel, "client.close()")
    assert server.request("DELETE", f"sciencelab/api/dask/clusters/{cluster['id']}").status_code == 204
    assert not folder.exists()


@pytest.fixture(autouse=True)
def _no_dask_config_from_home(monkeypatch, tmp_path):
    """The kernel and this process read no stray Dask configuration from the test user's home."""
    monkeypatch.setenv("DASK_CONFIG", str(tmp_path / "dask-config"))
