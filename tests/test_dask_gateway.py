"""The `gateway` backend against a real dask-gateway-server on loopback (the `dask_gateway` fixture)."""

import asyncio
import getpass
import logging
import signal
import time
from pathlib import Path

import psutil
import pytest
from aiohttp import ClientResponseError, RequestInfo
from dask_gateway import Gateway
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from sciencelab.dask.backends.gateway import GatewayBackend, gateway_bounds, make_gateway_options
from sciencelab.dask.options import ClusterOptions
from sciencelab.dask.templates import Bounds, Environment, make_templates
from sciencelab_spawner.demo import free_port

from .dask_clusters import (
    create_cluster,
    dask_worker_processes,
    run_in_kernel,
    wait_for_workers,
    wait_until,
)
from .lab_server import LabServer

OPTION_NAMES = {"cores": "worker_cores", "memory": "worker_memory", "idle_timeout": "idle_timeout"}


def gateway_template(address: str, proxy_address: str) -> dict:
    return {
        "title": "Dask Gateway",
        "backend": "gateway",
        "options": {
            "workers": {"default": 1, "minimum": 0, "maximum": 3},
            "cores": {"default": 1, "minimum": 1, "maximum": 4},
            "memory": {"default": 0.5, "minimum": 0.25, "maximum": 2},
            "idle_timeout": {"default": 0, "minimum": 0, "maximum": 30},
        },
        # Basic auth as the server's account; the test gateway's SimpleAuthenticator takes anyone.
        "backend_settings": {
            "address": address,
            "proxy_address": proxy_address,
            "auth": "basic",
            "options": OPTION_NAMES,
        },
    }


def test_gateway_bounds_come_from_its_own_specification():
    fields = {
        "worker_cores": {"default": 1, "min": 1, "max": 2},
        "worker_memory": {"default": 0.5, "min": 0.25, "max": 1.0},
        "image": {"default": "a", "min": None, "max": None},
    }
    assert gateway_bounds(fields, {**OPTION_NAMES, "environment": "image"}) == {
        "cores": Bounds(1, 1, 2),
        "memory": Bounds(0.5, 0.25, 1.0),
    }


def test_gateway_options_are_validated_numbers_and_admin_values():
    options = ClusterOptions(
        workers=2,
        cores=2,
        memory=1.5,
        gpus=0,
        idle_timeout=10.0,
        adaptive=False,
        adapt_minimum=0,
        adapt_maximum=3,
        environment=Environment("lcg", "LCG", "registry.cern.ch/lcg:105"),
    )
    assert make_gateway_options(options, {**OPTION_NAMES, "environment": "image"}, {"queue": "short"}) == {
        "queue": "short",
        "worker_cores": 2,
        "worker_memory": 1.5,
        "idle_timeout": 10.0,
        "image": "registry.cern.ch/lcg:105",
    }


@pytest.mark.parametrize(
    ("auth", "hint"),
    [
        (
            "jupyterhub",
            "this server's JupyterHub token (JUPYTERHUB_API_TOKEN) needs the scope "
            "access:services!service=<the gateway's JupyterHub service name>: the hub grants it with "
            "configure_sciencelab(c, server_services=[...]) or Spawner.server_token_scopes",
        ),
        ("basic", "check the template's backend_settings.auth"),
    ],
)
def test_a_gateway_refusing_the_servers_credentials_is_explained(auth, hint):
    template = gateway_template("http://gateway:8000", "gateway://gateway:8786")
    template["backend_settings"]["auth"] = auth
    backend = GatewayBackend(
        make_templates({"g": template}, {"g": "test"}, {"gateway": GatewayBackend.settings_schema})["g"],
        base_url="/",
        log=logging.getLogger("test"),
        clusters_directory=Path("/nonexistent"),  # a gateway cluster keeps nothing here
    )
    url = URL("http://gateway:8000/api/v1/options")
    refused = ClientResponseError(
        RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url), (), status=401, message="Unauthorized"
    )
    explained = backend.explain(refused)
    assert (explained.status_code, explained.message) == (
        502,
        f"the gateway at http://gateway:8000 refused this server's {auth} credentials (401 Unauthorized); {hint}",
    )
    assert backend.explain(ValueError("cluster not found")) is None


@pytest.fixture
def jp_server_config(dask_gateway):
    """In-process server with a template on the real gateway, and one on a port where nothing listens."""
    templates = {
        "gateway": gateway_template(dask_gateway.address, dask_gateway.proxy_address),
        "gateway-down": gateway_template(f"http://127.0.0.1:{free_port()}", f"gateway://127.0.0.1:{free_port()}"),
    }
    return {
        "ServerApp": {"jpserver_extensions": {"sciencelab": True}},
        "ClusterManager": {"templates": templates, "refresh_interval": 0.3, "discovery_interval": 0.3},
    }


async def test_form_bounds_are_the_templates_narrowed_by_the_gateway(dask_api):
    status, templates = await dask_api("templates")
    assert status == 200
    by_name = {t["name"]: t for t in templates}
    cores = by_name["gateway"]["schema"]["properties"]["cores"]
    assert (cores["minimum"], cores["maximum"]) == (1, 2)  # template allows 4, the gateway 2
    memory = by_name["gateway"]["schema"]["properties"]["memory"]
    assert (memory["minimum"], memory["maximum"]) == (0.25, 1.0)
    assert by_name["gateway-down"]["available"] is False
    assert "cannot be reached" in by_name["gateway-down"]["error"]


async def test_a_gateway_that_is_down_answers_503_quickly(dask_api):
    start = time.monotonic()
    status, body = await dask_api("clusters", "POST", {"template": "gateway-down", "options": {}})
    assert status == 503
    assert body["message"].startswith(
        "reading its options: the gateway backend of template 'gateway-down' cannot be reached: "
    )
    assert time.monotonic() - start < 15


async def test_clusters_made_in_notebook_code_are_listed_and_adopted(dask_api, dask_gateway):
    gateway = Gateway(dask_gateway.address, proxy_address=dask_gateway.proxy_address, auth="basic", asynchronous=True)
    name = await gateway.submit()
    try:

        async def listed():
            clusters = (await dask_api("clusters"))[1]
            return [c for c in clusters if c["name"] == name]

        [found] = await wait_until(listed, 30, "the notebook's gateway cluster to be listed")
        assert (found["managed"], found["template"], found["id"]) == (False, "gateway", None)

        status, adopted = await dask_api("clusters", "POST", {"template": "gateway", "adopt": name})
        assert status == 201, adopted
        assert (adopted["managed"], adopted["name"]) == (True, name)
        assert [c["name"] for c in (await dask_api("clusters"))[1]] == [name]

        status, body = await dask_api("clusters", "POST", {"template": "gateway", "adopt": "no-such-cluster"})
        assert (status, body["message"]) == (
            404,
            "adopt: 'no-such-cluster' is not a cluster of yours that template 'gateway' can adopt",
        )

        assert (await dask_api(f"clusters/{adopted['id']}", "DELETE"))[0] == 204
        await wait_until(lambda: _gateway_has_none(dask_gateway), 30, "the gateway to stop the cluster")
    finally:
        await gateway.stop_cluster(name)
        await gateway.close()


async def _gateway_has_none(dask_gateway):
    return await asyncio.to_thread(dask_gateway.clusters, getpass.getuser()) == []


@pytest.fixture
def gateway_lab_server(tmp_path, dask_gateway):
    """A real `jupyter server` process with a template on the real gateway and a local one; stopped after."""
    config = {
        "ClusterManager": {
            "templates": {
                "gateway": gateway_template(dask_gateway.address, dask_gateway.proxy_address),
                "local": {"backend": "local", "options": {"memory": {"default": 0.5, "minimum": 0.5}}},
            },
            "refresh_interval": 0.5,
        }
    }
    server = LabServer(tmp_path / "server", app="server", config=config).start()
    yield server
    server.stop()


def test_restarts_reattach_gateway_clusters_and_leave_no_local_worker(gateway_lab_server, kernel, dask_gateway):
    server = gateway_lab_server
    cluster = create_cluster(server, "gateway", workers=2, memory=0.5)
    cluster = wait_for_workers(server, cluster["id"], 2)
    assert cluster["connect_code"].startswith("from dask_gateway import Gateway\n")

    run_in_kernel(kernel, cluster["connect_code"])
    assert run_in_kernel(kernel, "print(sum(client.gather(client.map(lambda x: x + 1, range(10)))))").strip() == "55"
    run_in_kernel(kernel, "client.close(); cluster.close()")

    assert server.request("PATCH", f"sciencelab/api/dask/clusters/{cluster['id']}", {"workers": 1}).status_code == 200
    wait_for_workers(server, cluster["id"], 1)

    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        local = wait_for_workers(server, create_cluster(server, "local", workers=1)["id"], 1)
        local_workers = dask_worker_processes(psutil.Process(server.process.pid))
        assert len(local_workers) == 1, local

        server.stop(stop_signal)
        server.start()
        clusters = server.request("GET", "sciencelab/api/dask/clusters").json()
        assert [(c["id"], c["managed"], c["status"]) for c in clusters] == [(cluster["id"], True, "running")]
        assert wait_for_workers(server, cluster["id"], 1)["name"] == cluster["name"]
        _, alive = psutil.wait_procs(local_workers, timeout=15)
        assert alive == [], f"{signal.Signals(stop_signal).name} left local workers running: {alive}"

    assert server.request("DELETE", f"sciencelab/api/dask/clusters/{cluster['id']}").status_code == 204
    deadline = time.monotonic() + 30
    while dask_gateway.clusters(getpass.getuser()) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert dask_gateway.clusters(getpass.getuser()) == []
