"""Dask clusters behind a real JupyterHub: templates the hub passes per profile (`dask_config`),
templates restricted to JupyterHub groups, and a real dask-gateway-server that knows users through
that hub (dask-gateway's own `JupyterHubAuthenticator`, the gateway a service of the hub).
"""

import asyncio
import re
import secrets
import textwrap
import time

import pytest
import yaml
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from .demo_hub import DemoHub
from .gateway_server import GatewayServer, HubService

pytestmark = pytest.mark.hub

GATEWAY_SERVICE = "dask-gateway"
# Seconds for the gateway to start a scheduler and a worker process on a busy 2-core machine.
WORKERS_TIMEOUT = 90
PROFILES = """\
profiles:
  - slug: dask
    display_name: Dask analysis
    default: true
    dask_config: {dask_config}
"""


def make_dask_config(gateway: GatewayServer) -> dict:
    """The profile's Dask configuration: a gateway template (JupyterHub authentication) for everyone,
    a local one for gpu-users only."""
    return {
        "sciencelab": {
            "clusters": {
                "templates": {
                    "gateway": {
                        "title": "Dask Gateway",
                        "backend": "gateway",
                        "options": {
                            "workers": {"default": 1, "minimum": 0, "maximum": 2},
                            "memory": {"default": 0.5, "minimum": 0.25, "maximum": 1},
                        },
                        "backend_settings": {
                            "address": gateway.address,
                            "proxy_address": gateway.proxy_address,
                            "auth": "jupyterhub",
                            "options": {"cores": "worker_cores", "memory": "worker_memory"},
                        },
                    },
                    "gpu-users-only": {"backend": "local", "title": "GPU users", "groups": ["gpu-users"]},
                }
            }
        }
    }


@pytest.fixture(scope="module")
def dask_hub(tmp_path_factory):
    """A demo hub whose `dask` profile names a Dask config (`dask_config`) with a gateway template and
    a template for gpu-users only, and a dask-gateway-server registered with it as the `dask-gateway`
    service; alice (in gpu-users) and bob have running `dask` servers. Yields (hub, gateway).

    Everything stops afterwards: the servers and the hub, then the gateway with any cluster left;
    the last test fails if the hub logged a traceback.
    """
    state = tmp_path_factory.mktemp("dask-hub")
    api_token = secrets.token_hex(32)
    hub = DemoHub(
        state / "hub",
        extra_config=textwrap.dedent(f"""
        import os
        from sciencelab_spawner.demo import free_port
        from sciencelab_spawner.hub_config import configure_sciencelab
        c.JupyterHub.services = [{{"name": {GATEWAY_SERVICE!r}, "api_token": {api_token!r}}}]
        configure_sciencelab(c, profiles_file=os.path.join(os.path.dirname(__file__), "profiles.yaml"),
                             service_port=free_port(), server_services=[{GATEWAY_SERVICE!r}])
    """),
    )
    gateway = GatewayServer(state / "gateway", hub=HubService(GATEWAY_SERVICE, api_token, f"{hub.url}/hub/api"))
    dask_config = state / "cms-dask.yaml"
    dask_config.write_text(yaml.safe_dump(make_dask_config(gateway)))
    hub.profiles_path.write_text(PROFILES.format(dask_config=dask_config))
    try:
        gateway.start()
        hub.start()
        for user in ("alice", "bob"):
            response = hub.spawn(user, {"profile": "dask"})
            assert response.status_code in (201, 202), response.text
        yield hub, gateway
        hub.check_log()
    finally:
        hub.stop()
        gateway.stop()
        print(f"hub log: {hub.log_path}\ngateway log: {gateway.log_path}")


def dask_api(hub: DemoHub, method: str, user: str, path: str, **kwargs):
    return hub.request(method, f"/user/{user}/sciencelab/api/dask/{path}", user, **kwargs)


def wait_for(predicate, what: str, timeout: float = WORKERS_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.3)
    return result


def test_gateway_cluster_through_the_hub_is_the_users_own(dask_hub):
    hub, gateway = dask_hub
    templates = {t["name"]: t for t in dask_api(hub, "GET", "alice", "templates").json()}
    assert (templates["gateway"]["available"], templates["gateway"]["error"]) == (True, None)

    created = dask_api(hub, "POST", "alice", "clusters", json={"template": "gateway", "options": {"workers": 1}})
    assert created.status_code == 201, created.text
    cluster = created.json()
    try:
        cluster = wait_for(
            lambda: (
                (c := dask_api(hub, "GET", "alice", f"clusters/{cluster['id']}").json())["workers"]["running"] == 1
                and c
            ),
            "one running worker",
        )

        # The gateway knows the cluster as alice's: her hub token lists it, bob's does not, and bob's
        # server (which lists his gateway clusters for adoption) shows nothing.
        [on_gateway] = gateway.clusters(token=hub.token("alice"))
        assert f"gateway.connect({on_gateway['name']!r})" in cluster["connect_code"]
        assert len(gateway.cluster_processes()) == 2  # its scheduler and its worker
        assert gateway.clusters(token=hub.token("bob")) == []
        assert dask_api(hub, "GET", "bob", "clusters").json() == []

        # What "Insert code" puts in a notebook, run by a kernel of alice's server with its hub token.
        with hub.kernel("alice") as kernel:
            kernel.run(cluster["connect_code"])
            assert kernel.run(
                "print(len(client.scheduler_info()['workers']), "
                "sum(client.gather(client.map(lambda x: x * x, range(100)))))"
            ).split() == ["1", "328350"]
            kernel.run("client.close(); cluster.close()")
    finally:
        deleted = dask_api(hub, "DELETE", "alice", f"clusters/{cluster['id']}")
    assert deleted.status_code == 204, deleted.text
    wait_for(lambda: not gateway.clusters(token=hub.token("alice")), "the gateway to forget the cluster", 30)
    wait_for(lambda: not gateway.cluster_processes(), "the gateway's scheduler and worker to exit", 30)
    assert dask_api(hub, "GET", "alice", "clusters").json() == []


@pytest.mark.parametrize(
    ("user", "templates"),
    [
        ("alice", ["gateway", "gpu-users-only"]),  # the demo puts alice in gpu-users
        ("bob", ["gateway"]),
    ],
)
def test_templates_follow_the_users_jupyterhub_groups(dask_hub, user, templates):
    hub, _ = dask_hub
    listed = dask_api(hub, "GET", user, "templates")
    assert listed.status_code == 200, listed.text
    assert [template["name"] for template in listed.json()] == templates

    asked = dask_api(hub, "POST", user, "clusters", json={"template": "gpu-users-only", "options": {"workers": 0}})
    if "gpu-users-only" in templates:
        assert asked.status_code == 201, asked.text
        assert dask_api(hub, "DELETE", user, f"clusters/{asked.json()['id']}").status_code == 204
    else:
        assert (asked.status_code, asked.json()["message"]) == (
            403,
            "template: 'gpu-users-only' is only for members of gpu-users; choose one of: gateway",
        )


async def bokeh_acknowledges(url: str, headers: dict, token: str) -> bool:
    """Whether Bokeh's server answers the session WebSocket at `url` (its ACK is the first message)."""
    socket = await websocket_connect(HTTPRequest(url, headers=headers), subprotocols=["bokeh", token])
    try:
        return await asyncio.wait_for(socket.read_message(), 30) is not None
    finally:
        socket.close()


def test_dashboard_is_reachable_through_the_hub_with_its_websocket(dask_hub):
    hub, _ = dask_hub
    created = dask_api(hub, "POST", "alice", "clusters", json={"template": "gpu-users-only", "options": {"workers": 0}})
    assert created.status_code == 201, created.text
    cluster = created.json()
    try:
        dashboard = cluster["dashboard_url"]
        assert re.fullmatch(r"/user/alice/proxy/\d+/status", dashboard), dashboard
        # Through the hub's proxy and alice's server (jupyter-server-proxy): the page, then the Bokeh
        # WebSocket its plots open at `<page>/ws`, with the session token from the page.
        page = hub.request("GET", dashboard, "alice")
        assert page.status_code == 200 and "bokeh" in page.text.lower(), page.text[:500]
        token = re.search(r'"token":\s*"([^"]+)"', page.text).group(1)
        headers = {"Authorization": f"token {hub.token('alice')}"}
        assert asyncio.run(bokeh_acknowledges(f"ws://127.0.0.1:{hub.port}{dashboard}/ws", headers, token))
        # Bob's token does not open alice's dashboard.
        assert hub.request("GET", dashboard, "bob", allow_redirects=False).status_code in (302, 403)
    finally:
        assert dask_api(hub, "DELETE", "alice", f"clusters/{cluster['id']}").status_code == 204
