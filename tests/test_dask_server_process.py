"""Dask clusters of a real `jupyter server` process: a computation from a real kernel, restarts, crashes."""

import signal
import time

import psutil
import pytest

from .dask_clusters import create_cluster, dask_worker_processes, run_in_kernel, wait_for_workers
from .lab_server import LabServer

TEMPLATES = {
    "local": {
        "backend": "local",
        "options": {
            "workers": {"default": 1, "minimum": 0, "maximum": 3},
            "memory": {"default": 0.5, "minimum": 0.25, "maximum": 1},
        },
    }
}


@pytest.fixture
def lab_server(tmp_path):
    """A real `jupyter server` with our extension and local templates on 127.0.0.1; stopped after the test."""
    server = LabServer(
        tmp_path / "server", app="server", config={"ClusterManager": {"templates": TEMPLATES, "refresh_interval": 0.5}}
    ).start()
    yield server
    server.stop()


def worker_processes(server: LabServer) -> list[psutil.Process]:
    return dask_worker_processes(psutil.Process(server.process.pid))


def test_kernel_computes_on_a_cluster_with_the_inserted_code(lab_server, kernel):
    cluster = wait_for_workers(lab_server, create_cluster(lab_server, "local", workers=2)["id"], 2)

    # What "Insert code" puts in the notebook, then a computation that needs both workers.
    run_in_kernel(kernel, cluster["connect_code"])
    result = run_in_kernel(
        kernel,
        "print(len(client.scheduler_info()['workers']), sum(client.gather(client.map(lambda x: x * x, range(100)))))",
    )
    assert result.split() == ["2", "328350"]

    response = lab_server.request("PATCH", f"sciencelab/api/dask/clusters/{cluster['id']}", {"workers": 1})
    assert response.status_code == 200
    wait_for_workers(lab_server, cluster["id"], 1)
    assert (
        run_in_kernel(kernel, "client.wait_for_workers(1); print(len(client.scheduler_info()['workers']))").strip()
        == "1"
    )

    run_in_kernel(kernel, "client.close()")
    assert lab_server.request("DELETE", f"sciencelab/api/dask/clusters/{cluster['id']}").status_code == 204
    deadline = time.monotonic() + 30
    while worker_processes(lab_server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker_processes(lab_server) == []


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "crash"])
def test_restart_leaves_no_local_worker_behind(lab_server, stop_signal):
    wait_for_workers(lab_server, create_cluster(lab_server, "local", workers=2)["id"], 2)
    workers = worker_processes(lab_server)
    assert len(workers) == 2

    lab_server.stop(stop_signal)
    lab_server.start()

    # A local cluster cannot outlive its server: not listed again, and none of its processes runs.
    assert lab_server.request("GET", "sciencelab/api/dask/clusters").json() == []
    _gone, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == [], f"orphaned Dask workers: {alive}"
