"""Dask clusters are private to their owner, end to end on the demo hub (two users on one machine).

The path an outside check found: bob creates a local cluster; alice, with her own token, opens
`/user/alice/proxy/<bob's dashboard port>/json/identity.json`, which names bob's scheduler; she
connects a `distributed.Client` to it and `client.run` hands her bob's `JUPYTERHUB_API_TOKEN`. Every
step fails now: her server does not proxy bob's ports, and bob's scheduler speaks only TLS with its
own certificate, which she does not have.
"""

import json
import re
import textwrap
import time

import pytest

pytestmark = pytest.mark.hub

WORKERS_TIMEOUT = 90


def dask_api(hub, method: str, user: str, path: str, **kwargs):
    return hub.request(method, f"/user/{user}/sciencelab/api/dask/{path}", user, **kwargs)


def running_cluster(hub, user: str) -> dict:
    """A new local cluster of `user` with one connected worker."""
    created = dask_api(hub, "POST", user, "clusters", json={"template": "local", "options": {"workers": 1}})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + WORKERS_TIMEOUT
    while (cluster := dask_api(hub, "GET", user, f"clusters/{created.json()['id']}").json())["workers"]["running"] < 1:
        assert time.monotonic() < deadline, f"{user}'s worker did not connect: {cluster}"
        time.sleep(0.3)
    return cluster


# Run in alice's kernel: each way of reaching a scheduler without its credentials.
ATTEMPTS = textwrap.dedent("""
    import json, os
    from dask.distributed import Client, Security
    address = {address!r}
    attempts = {{
        "plain tcp": ("tcp://" + address.split("://")[1], {{}}),
        "tls without credentials": (address, {{}}),
        "another cluster's certificate": (address, {{"security": Security.temporary()}}),
    }}
    results = {{}}
    for name, (target, kwargs) in attempts.items():
        try:
            with Client(target, timeout=5, **kwargs) as client:
                results[name] = "connected: " + str(client.run(lambda: os.environ.get("JUPYTERHUB_API_TOKEN")))
        except Exception as error:
            results[name] = "refused: " + type(error).__name__
    print(json.dumps(results))
""")


def test_another_users_cluster_is_out_of_reach_at_every_step(demo_hub, alice, bob):
    for user in (alice, bob):
        response = demo_hub.spawn(user, {"profile": "cpu"})
        assert response.status_code in (201, 202), response.text
    cluster = running_cluster(demo_hub, bob)
    port = re.fullmatch(r"/user/bob/proxy/(\d+)/status", cluster["dashboard_url"])[1]
    try:
        # 1. Alice's server does not proxy bob's dashboard, whichever way the port is written.
        for path in (
            f"/user/alice/proxy/{port}/json/identity.json",
            f"/user/alice/proxy/absolute/{port}/json/identity.json",
            f"/user/alice/proxy/127.0.0.1:{port}/json/identity.json",
            f"/user/alice/proxy/localhost:{port}/json/identity.json",
        ):
            refused = demo_hub.request("GET", path, alice)
            assert refused.status_code == 403, (path, refused.status_code, refused.text[:300])
            assert refused.json() == {
                "message": f"port {port} belongs to another user's process; this server proxies only your own ports"
            }
        # Bob's own server shows it to him (the panel's dashboard link).
        identity = demo_hub.request("GET", f"/user/bob/proxy/{port}/json/identity.json", bob)
        assert identity.status_code == 200 and identity.json()["address"] == cluster["scheduler_address"]

        # 2. Knowing the address anyway, alice's kernel cannot talk to bob's scheduler.
        assert cluster["scheduler_address"].startswith("tls://127.0.0.1:")
        with demo_hub.kernel(alice) as kernel:
            results = json.loads(kernel.run(ATTEMPTS.format(address=cluster["scheduler_address"])))
        assert set(results) == {"plain tcp", "tls without credentials", "another cluster's certificate"}
        assert all(result.startswith("refused: ") for result in results.values()), results

        # 3. Bob's own notebook connects with the inserted code, which reads his cluster's files; the
        # client's repr links the dashboard through the hub, and that link works for him.
        with demo_hub.kernel(bob) as kernel:
            kernel.run(cluster["connect_code"])
            assert kernel.run("print(sum(client.gather(client.map(lambda x: x + 1, range(10)))))").strip() == "55"
            link = kernel.run("print(client.dashboard_link)").strip()
            kernel.run("client.close()")
        assert link == f"/user/bob/proxy/127.0.0.1:{port}/status"
        dashboard = demo_hub.request("GET", link, bob)
        assert dashboard.status_code == 200 and "bokeh" in dashboard.text.lower()
    finally:
        assert dask_api(demo_hub, "DELETE", bob, f"clusters/{cluster['id']}").status_code == 204


# Run in alice's kernel: a web server she starts herself, once as a child of her kernel and once
# detached from it (its parent exits), as `nohup ... &` in a terminal would.
OWN_SERVERS = textwrap.dedent("""
    import socket, subprocess, sys, time
    def free_port():
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    child, detached = free_port(), free_port()
    server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
    child_process = subprocess.Popen([*server, str(child)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["sh", "-c", " ".join(server) + f" {detached} >/dev/null 2>&1 &"], check=True)
    for port in (child, detached):
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    print(child, detached)
""")


STOP_LISTENERS = textwrap.dedent("""
    import psutil
    for connection in psutil.net_connections("tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port in {ports}:
            psutil.Process(connection.pid).kill()
""")


def test_ports_a_user_opened_are_proxied_for_her_only(demo_hub, alice, bob):
    for user in (alice, bob):
        response = demo_hub.spawn(user, {"profile": "cpu"})
        assert response.status_code in (201, 202), response.text
    with demo_hub.kernel(alice) as kernel:
        ports = kernel.run(OWN_SERVERS).split()
        try:
            for port in ports:
                own = demo_hub.request("GET", f"/user/alice/proxy/{port}/", alice)
                assert own.status_code == 200 and "Directory listing" in own.text, (port, own.text[:300])
                foreign = demo_hub.request("GET", f"/user/bob/proxy/{port}/", bob)
                assert foreign.status_code == 403, (port, foreign.text[:300])
        finally:
            kernel.run(STOP_LISTENERS.format(ports=[int(port) for port in ports]))
