"""Helpers for tests of the Dask cluster API: waiting for clusters, and the `api` caller's shape."""

import asyncio
import time

import psutil
from playwright.sync_api import expect

from .lab_server import LabServer

# Seconds for worker processes to start and register on a busy 2-core machine.
WORKERS_TIMEOUT = 90


async def wait_until(predicate, timeout: float, what: str):
    """Await `predicate()` every 0.2 s until it returns something true; return that, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def create_cluster(server: LabServer, template: str, **options) -> dict:
    """POST a cluster to a real server; fail with the server's message unless it answers 201."""
    response = server.request("POST", "sciencelab/api/dask/clusters", {"template": template, "options": options})
    assert response.status_code == 201, response.text
    return response.json()


def wait_for_workers(server: LabServer, cluster_id: str, count: int) -> dict:
    """Poll a real server until the cluster has `count` running workers; return its JSON."""
    deadline = time.monotonic() + WORKERS_TIMEOUT
    while True:
        cluster = server.request("GET", f"sciencelab/api/dask/clusters/{cluster_id}").json()
        if cluster["workers"]["running"] == count:
            return cluster
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster {cluster_id} did not reach {count} workers: {cluster['workers']}")
        time.sleep(0.3)


def run_in_kernel(client, code: str, timeout: float = 120) -> str:
    """Execute `code` in a kernel; return its stdout, or fail with the kernel's traceback."""
    output = []

    def collect(message):
        content = message["content"]
        if message["msg_type"] == "stream":
            output.append(content["text"])
        elif message["msg_type"] == "error":
            output.append("\n".join(content["traceback"]))

    reply = client.execute_interactive(code, timeout=timeout, output_hook=collect)
    assert reply["content"]["status"] == "ok", "".join(output)
    return "".join(output)


def dask_worker_processes(root: psutil.Process) -> list[psutil.Process]:
    """The LocalCluster worker processes below `root`: children of multiprocessing's fork server
    (the local backend's default) or spawned interpreters."""
    workers = []
    for process in root.children(recursive=True):
        try:
            parent = process.parent()
            if "spawn_main" in " ".join(process.cmdline()) or (
                parent is not None and "multiprocessing.forkserver" in " ".join(parent.cmdline())
            ):
                workers.append(process)
        except psutil.NoSuchProcess:
            pass
    return workers


def run_connect_code(page, card):
    """In the browser: insert the cluster card's connect code into the open notebook and run it, so
    the notebook's `client` is connected to that cluster."""
    card.get_by_role("button", name="Insert code").click()
    cell = page.locator(".jp-NotebookPanel .jp-CodeCell").filter(has_text="Client(")
    expect(cell).to_have_count(1)
    expect(cell).to_contain_text("from dask.distributed import Client")
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-OutputArea-output")).to_contain_text("Client", timeout=60_000)
