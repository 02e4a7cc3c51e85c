"""Shared fixtures. Every fixture that starts a service binds it to 127.0.0.1 and stops it after."""

import json
import os
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel
from playwright.sync_api import sync_playwright

from .batch import start_or_skip
from .batch.htcondor import HTCondorPool
from .batch.slurm import SlurmCluster
from .demo_hub import DemoHub
from .gateway_server import GatewayServer

pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.k8s.fixtures", "tests.oidc.fixtures"]


@pytest.fixture(scope="session")
def demo_hub_process(tmp_path_factory):
    """The real demo hub (`sciencelab demo`: JupyterHub + configurable-http-proxy) on a free port.

    One hub for the session: starting it costs seconds. Tests use it through `demo_hub`.
    """
    hub = DemoHub(tmp_path_factory.mktemp("demo-hub")).start()
    try:
        yield hub
        hub.check_log()
    finally:
        hub.stop()
        print(f"demo hub log: {hub.log_path}")


@pytest.fixture
def demo_hub(demo_hub_process):
    """The session's demo hub; the test fails if the hub logged a traceback while it ran (a
    refusal logs one line, never a traceback). Tests stop the servers they start."""
    yield demo_hub_process
    demo_hub_process.check_log()


@pytest.fixture
def alice(demo_hub):
    """The demo user alice; her server is stopped after the test, whatever happened."""
    yield "alice"
    demo_hub.stop_server("alice")


@pytest.fixture
def bob(demo_hub):
    """The demo user bob; his server is stopped after the test, whatever happened."""
    yield "bob"
    demo_hub.stop_server("bob")


def pytest_collection_modifyitems(items):
    """Tests that use a batch system fixture or the OIDC provider carry its marker, so `-m "not htcondor"`
    deselects them."""
    for item in items:
        for fixture, marker in (("htcondor_pool", "htcondor"), ("slurm_cluster", "slurm"), ("oidc_provider", "oidc")):
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)


@pytest.fixture(scope="session")
def htcondor_pool():
    """A personal HTCondor pool on 127.0.0.1 (tests/batch/htcondor.py), ready: it has run a probe job.

    Yields the `HTCondorPool`: `env()` puts its `condor_*` wrappers first on PATH (what dask-jobqueue
    and a Jupyter server need), `tool("condor_q", ...)` runs one, `jobs()` lists the queue,
    `job_directory(name)` makes a log directory the jobs' user (`user`) can write. Jobs see /tmp,
    this Python and the repository. Skips (fails with CI=true) when `make .stamps/htcondor` has not
    run; at the end every job is removed, every daemon stopped, and the pool's mounts are gone.
    """
    pool = HTCondorPool()
    try:
        yield start_or_skip(pool.start)
    finally:
        pool.stop()
        pool.cleanup()


@pytest.fixture(scope="session")
def slurm_cluster():
    """A single-node SLURM cluster on 127.0.0.1 (tests/batch/slurm.py), ready: it has run a probe job.

    Yields the `SlurmCluster`: `env()` adds its SLURM_CONF (a private slurm.conf, free ports, its own
    MUNGE key) to an environment, `tool("squeue", ...)` runs a client, `jobs()` lists the queue. Jobs
    run as the submitting user on this host. Skips (fails with CI=true) when `make .stamps/slurm` has
    not run; at the end every job is cancelled and munged, slurmctld and slurmd are stopped.
    """
    cluster = SlurmCluster()
    try:
        yield start_or_skip(cluster.start)
    finally:
        cluster.stop()
        cluster.cleanup()


@pytest.fixture(scope="session")
def dask_gateway(tmp_path_factory):
    """A real dask-gateway-server (local backend, simple auth) on free loopback ports, for the session.

    Stopping it stops its clusters; the fixture then checks that no scheduler or worker is left.
    """
    gateway = GatewayServer(tmp_path_factory.mktemp("dask-gateway")).start()
    yield gateway
    gateway.stop()
    print(f"dask-gateway log: {gateway.log_path}")


@pytest.fixture
def kernel():
    """A real IPython kernel started by jupyter_client, as a notebook's; shut down after the test."""
    manager, client = start_new_kernel(kernel_name="python3")
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


@pytest.fixture
def dask_api(jp_fetch):
    """Call `sciencelab/api/dask/<path>` of the in-process server; returns (status, decoded JSON or None)."""

    async def call(path: str, method: str = "GET", body=None):
        response = await jp_fetch(
            "sciencelab",
            "api",
            "dask",
            *path.split("/"),
            method=method,
            body=None if body is None else json.dumps(body),
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=120,
        )
        return response.code, json.loads(response.body) if response.body else None

    return call


CHROMIUM = os.environ.get("SCIENCELAB_CHROMIUM", "/usr/bin/chromium")
# Headless on a machine without a GPU, a sandbox (we may be root) or network beyond loopback.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAB_TIMEOUT_MS = 180_000


@pytest.fixture
def browser():
    """Debian's Chromium (never a browser downloaded by Playwright), closed after the test.

    Function scope on purpose: Playwright's sync API runs on the current event loop, and
    pytest-jupyter's autouse loop fixture closes that loop after every test.
    """
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where browser tests save screenshots: $SCIENCELAB_SCREENSHOT_DIR (`make screenshot` sets docs/)."""
    folder = Path(os.environ.get("SCIENCELAB_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
