"""The Dask cluster API inside a real Jupyter server, with real `LocalCluster` workers on loopback.

pytest-jupyter runs the server in this process, so the workers are child processes of the test;
every test checks none is left when its clusters are gone.
"""

import asyncio
import json
import re
import stat
from pathlib import Path

import psutil
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from sciencelab.dask.connect import make_connect_code
from sciencelab.dask.credentials import TlsFiles, tls_client_recipe
from sciencelab.dask.errors import LimitError
from sciencelab.dask.manager import ClusterManager

from .dask_clusters import WORKERS_TIMEOUT, dask_worker_processes, wait_until

TEMPLATES = {
    "small": {
        "title": "Small local cluster",
        "backend": "local",
        "options": {
            "workers": {"default": 1, "minimum": 0, "maximum": 3},
            "memory": {"default": 0.5, "minimum": 0.25, "maximum": 1},
            "idle_timeout": {"default": 0, "minimum": 0, "maximum": 60},
        },
    },
    "cms-only": {"backend": "local", "groups": ["cms"]},
}
# `local` lifts this machine's own budget (a CI machine has 2 CPUs), so the limits here are the admin's.
LIMITS = {"default": {"clusters": 2, "workers": 4}, "local": {"cores": 16, "memory": 16}}


@pytest.fixture
def jp_server_config():
    """Our extension with test templates and limits, and jupyter-server-proxy for the dashboards."""
    return {
        "ServerApp": {"jpserver_extensions": {"sciencelab": True, "jupyter_server_proxy": True}},
        "ClusterManager": {"templates": TEMPLATES, "limits": LIMITS, "refresh_interval": 0.2},
    }


def worker_processes() -> list[psutil.Process]:
    """Worker processes of LocalClusters of the in-process server."""
    return dask_worker_processes(psutil.Process())


async def test_templates_list_schemas_and_hide_group_templates(dask_api):
    status, templates = await dask_api("templates")
    assert status == 200
    assert [t["name"] for t in templates] == ["small"]  # no JupyterHub here, hence no groups
    small = templates[0]
    assert small["schema"]["properties"]["workers"] == {
        "type": "integer",
        "title": "Workers",
        "description": "0 to 3 workers",
        "minimum": 0,
        "maximum": 3,
        "default": 1,
    }
    assert small["available"] and "python3" in [e["name"] for e in small["environments"]]


async def test_local_cluster_lifecycle_with_real_workers(dask_api, jp_serverapp):
    status, cluster = await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 2}})
    assert status == 201, cluster
    cluster_id = cluster["id"]
    assert cluster["status"] == "running" and cluster["workers"]["requested"] == 2
    assert cluster["scheduler_address"].startswith("tls://127.0.0.1:")
    # The connect code names the cluster's own credentials, in a folder only this account reads.
    folder = Path(jp_serverapp.web_app.settings["sciencelab_dask"].clusters_directory) / cluster_id
    tls = TlsFiles(str(folder / "cert.pem"), str(folder / "key.pem"))
    assert cluster["connect_code"] == make_connect_code(tls_client_recipe(cluster["scheduler_address"], tls))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(Path(path).stat().st_mode) for path in (tls.cert, tls.key)} == {0o600}

    async def two_running():
        _, body = await dask_api(f"clusters/{cluster_id}")
        return body if body["workers"]["running"] == 2 else None

    cluster = await wait_until(two_running, WORKERS_TIMEOUT, "2 workers")
    assert cluster["workers"] == {"requested": 2, "pending": 0, "running": 2}
    assert cluster["cores"] == 2 and cluster["memory"] == 2 * 2**29
    assert all(w["state"] == "connected" and w["memory"] > 0 for w in cluster["worker_list"])
    assert len(worker_processes()) == 2

    status, scaled = await dask_api(f"clusters/{cluster_id}", "PATCH", {"workers": 1})
    assert (status, scaled["workers"]["requested"]) == (200, 1)
    await wait_until(lambda: _running_count(dask_api, cluster_id, 1), WORKERS_TIMEOUT, "scale down to 1 worker")

    status, adapted = await dask_api(f"clusters/{cluster_id}", "PATCH", {"adapt": {"minimum": 1, "maximum": 3}})
    assert (status, adapted["adapt"]) == (200, {"minimum": 1, "maximum": 3})

    status, logs = await dask_api(f"clusters/{cluster_id}/logs")
    assert status == 200 and "scheduler" in logs and "Register worker" in logs["scheduler"]

    status, _ = await dask_api(f"clusters/{cluster_id}", "DELETE")
    assert status == 204
    assert (await dask_api("clusters")) == (200, [])
    await wait_until(lambda: _none_left(), 30, "worker processes to exit")
    assert not folder.exists(), "the cluster's credentials and spill space outlived it"


async def _running_count(dask_api, cluster_id, count):
    _, body = await dask_api(f"clusters/{cluster_id}")
    return body["workers"]["running"] == count


async def _none_left():
    return not worker_processes()


async def test_errors_name_field_value_and_bounds(dask_api):
    assert await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 7}}) == (
        400,
        {"message": "workers: 7 is out of bounds; choose 0 to 3 workers", "field": "workers", "value": 7},
    )
    assert await dask_api("clusters", "POST", {"template": "cms-only"}) == (
        403,
        {"message": "template: 'cms-only' is only for members of cms; choose one of: small"},
    )
    assert await dask_api("clusters", "POST", {"template": "no-such-template"}) == (
        404,
        {"message": "template: 'no-such-template' is not a template you may use; choose one of: small"},
    )
    assert await dask_api("clusters", "POST", {"template": "small", "name": "x; rm -rf /"}) == (
        400,
        {
            "message": "name: not a field of a cluster request; send template, options (or adopt)",
            "field": "name",
            "value": "x; rm -rf /",
        },
    )
    assert (await dask_api("clusters", "POST", ["small"]))[0] == 400
    assert await dask_api("clusters/0123abcd") == (
        404,
        {"message": "cluster: no cluster '0123abcd' of yours; list them with GET sciencelab/api/dask/clusters"},
    )
    assert (await dask_api("clusters/0123abcd", "PATCH", {"workers": 1}))[0] == 404
    assert (await dask_api("clusters/0123abcd", "DELETE"))[0] == 404
    assert (await dask_api("clusters/0123abcd/logs"))[0] == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff{}", "body: not UTF-8 (byte 0 is 0xff); send JSON encoded as UTF-8"),
        (b"{", "body: not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b'{"workers": NaN}', "body: NaN is not a number JSON allows; send a finite number"),
        (b'{"workers": -Infinity}', "body: -Infinity is not a number JSON allows; send a finite number"),
        (b'{"workers": 1e400}', "body: 1e400 is too large for a number; send a finite number"),
        (b"9" * 5000, "body: a number of 5000 digits is more than Python reads; send a smaller one"),
        (b"[" * 17 + b"]" * 17, "body: nested deeper than 16 levels"),
        (b"[" * 60_000, "body: nested deeper than 16 levels"),  # deeper than Python's recursion limit
        (b" " * 70_000, "body: 70000 bytes is more than the 65536 bytes this server reads"),
    ],
)
async def test_a_body_that_is_not_json_we_read_is_a_400_naming_the_problem(jp_fetch, body, message):
    for method, path in [("POST", ["clusters"]), ("PATCH", ["clusters", "0123abcd"])]:
        response = await jp_fetch(
            "sciencelab",
            "api",
            "dask",
            *path,
            method=method,
            body=body,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        assert (response.code, json.loads(response.body)) == (400, {"message": message})


async def test_refused_values_come_back_cut_short(dask_api):
    assert await dask_api("clusters", "POST", {"template": "x" * 50_000}) == (
        404,
        {"message": f"template: '{'x' * 79}… (50002 characters) is not a template you may use; choose one of: small"},
    )
    assert await dask_api("clusters", "POST", {"template": "small", "options": {"workers": "y" * 1000}}) == (
        400,
        {
            "message": f"workers: '{'y' * 79}… (1002 characters) is not a whole number; choose 0 to 3 workers",
            "field": "workers",
            "value": f"'{'y' * 79}… (1002 characters)",
        },
    )
    status, body = await dask_api("clusters", "POST", {"template": "small", "options": {"k" * 500: 1}})
    assert (status, body["field"]) == (400, f"'{'k' * 79}… (502 characters)")
    assert body["message"].startswith(f"{'k' * 80}… (500 characters): not an option of template 'small'")


async def test_limits_refuse_a_cluster_too_many(dask_api):
    first = await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 0}})
    second = await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 3}})
    assert (first[0], second[0]) == (201, 201)
    status, body = await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 0}})
    assert (status, body["message"]) == (
        403,
        "clusters: this cluster would use 3 clusters in all, above your limit "
        "of 2 clusters (default); you use 2 clusters now. Shut down or scale down a cluster first.",
    )
    status, body = await dask_api(f"clusters/{first[1]['id']}", "PATCH", {"workers": 2})
    assert (status, body["message"]) == (
        403,
        "workers: this scaling would use 5 workers in all, above your limit "
        "of 4 workers (default); you use 3 workers now. Shut down or scale down a cluster first.",
    )
    for created in (first, second):
        assert (await dask_api(f"clusters/{created[1]['id']}", "DELETE"))[0] == 204
    await wait_until(_none_left, 30, "worker processes to exit")


async def test_websocket_pushes_the_users_clusters(dask_api, jp_ws_fetch):
    socket = await jp_ws_fetch("sciencelab", "api", "dask", "clusters", "updates")
    assert json.loads(await socket.read_message()) == {"type": "clusters", "clusters": []}
    socket.write_message(json.dumps({"interval": 0.1}))
    status, cluster = await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 1}})
    assert status == 201
    while True:  # updates keep coming until the worker is there
        message = json.loads(await asyncio.wait_for(socket.read_message(), WORKERS_TIMEOUT))
        clusters = message["clusters"]
        if clusters and clusters[0]["workers"]["running"] == 1:
            break
    assert clusters[0]["id"] == cluster["id"]
    await dask_api(f"clusters/{cluster['id']}", "DELETE")
    while json.loads(await asyncio.wait_for(socket.read_message(), 30))["clusters"]:
        pass
    socket.close()
    await wait_until(_none_left, 30, "worker processes to exit")


async def test_websocket_answers_a_message_it_cannot_take_and_stays_open(jp_ws_fetch):
    socket = await jp_ws_fetch("sciencelab", "api", "dask", "clusters", "updates")
    await socket.read_message()
    for message, answer in [
        (b"\xff", "message: not UTF-8 (byte 0 is 0xff); send JSON encoded as UTF-8"),
        ('{"interval": NaN}', "message: NaN is not a number JSON allows; send a finite number"),
        ('{"interval": 61}', 'interval: 61 is out of bounds; send {"interval": seconds} with 0 to 60 seconds'),
        ('{"interval": "1"}', "interval: '1' is not a number; send {\"interval\": seconds} with 0 to 60 seconds"),
        (
            '{"rate": 1}',
            "message: {'rate': 1} is not an update request; send {\"interval\": seconds} with 0 to 60 seconds",
        ),
    ]:
        await socket.write_message(message, binary=isinstance(message, bytes))
        assert json.loads(await socket.read_message()) == {"type": "error", "message": answer}
    await socket.write_message(json.dumps({"interval": 0.5}))
    await socket.write_message("[]")  # the answer to this one shows the valid one had none
    assert json.loads(await socket.read_message())["message"].startswith("message: [] is not an update request")
    socket.close()


async def test_refreshing_runs_only_while_a_cluster_runs_or_a_panel_listens(dask_api, jp_ws_fetch, jp_serverapp):
    manager = jp_serverapp.web_app.settings["sciencelab_dask"]
    await manager.start()
    assert not manager.refreshing, "an idle server should not wake up every second"

    socket = await jp_ws_fetch("sciencelab", "api", "dask", "clusters", "updates")
    await socket.read_message()
    assert manager.refreshing
    socket.close()
    await wait_until(lambda: _stopped_refreshing(manager), 10, "refreshing to stop without listeners")

    status, cluster = await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 0}})
    assert status == 201 and manager.refreshing
    await dask_api(f"clusters/{cluster['id']}", "DELETE")
    await wait_until(lambda: _stopped_refreshing(manager), 10, "refreshing to stop without clusters")


async def _stopped_refreshing(manager) -> bool:
    return not manager.refreshing


async def test_dashboard_is_proxied_with_its_bokeh_websocket(
    dask_api, jp_fetch, jp_http_port, jp_base_url, jp_auth_header
):
    status, cluster = await dask_api("clusters", "POST", {"template": "small", "options": {"workers": 0}})
    assert status == 201
    dashboard = cluster["dashboard_url"]
    assert re.fullmatch(rf"{re.escape(jp_base_url)}proxy/\d+/status", dashboard), dashboard
    page = await jp_fetch(*dashboard[len(jp_base_url) :].split("/"))
    assert page.code == 200 and b"bokeh" in page.body.lower()
    # Bokeh's page opens `<page>/ws` with its session token as the WebSocket sub-protocol.
    token = re.search(rb'"token":\s*"([^"]+)"', page.body).group(1).decode()
    request = HTTPRequest(f"ws://localhost:{jp_http_port}{dashboard}/ws", headers=jp_auth_header)
    socket = await websocket_connect(request, subprotocols=["bokeh", token])
    first = await asyncio.wait_for(socket.read_message(), 30)
    assert first is not None  # Bokeh's ACK, through jupyter-server-proxy
    socket.close()
    await dask_api(f"clusters/{cluster['id']}", "DELETE")


async def test_idle_cluster_shuts_down_after_the_templates_timeout(dask_api):
    status, _cluster = await dask_api(
        "clusters", "POST", {"template": "small", "options": {"workers": 1, "idle_timeout": 0.05}}
    )
    assert status == 201

    async def gone():
        return (await dask_api("clusters"))[1] == []

    await wait_until(gone, 60, "the idle cluster to shut down")
    await wait_until(_none_left, 30, "worker processes to exit")


async def test_local_clusters_together_fit_the_servers_cpus_and_memory(tmp_path):
    """Three 2-worker clusters of 1-core, 2 GiB workers on a 2 CPU, 4 GiB server: the second is
    refused, naming the server's budget (adaptive clusters: they count what they may grow to)."""
    manager = ClusterManager(
        config_paths=[],
        environ={"CPU_LIMIT": "2", "MEM_LIMIT": str(4 * 2**30)},
        templates={"local": {"backend": "local", "options": {"memory": {"default": 2, "minimum": 1, "maximum": 2}}}},
        state_file=str(tmp_path / "clusters.json"),
        clusters_directory=str(tmp_path / "clusters"),
    )
    request = {"template": "local", "options": {"adaptive": True, "adapt_minimum": 0, "adapt_maximum": 2}}
    try:
        first = await manager.create_cluster("alice", [], request)
        with pytest.raises(LimitError) as refused:
            await manager.create_cluster("alice", [], request)
        assert refused.value.status_code == 403
        assert refused.value.message == (
            "cores: this cluster would use 4 cores in all, above your limit of 2 cores (this server's CPUs and "
            "memory); you use 2 cores now. Shut down or scale down a cluster first."
        )
        await manager.delete_cluster("alice", first["id"])
        await manager.create_cluster("alice", [], request)  # room again
    finally:
        await manager.stop()
