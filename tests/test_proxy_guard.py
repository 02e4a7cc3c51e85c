"""The proxy guard: which hosts are this machine, and whose ports this server proxies (a real server here;
the two-user case runs on the demo hub in tests/test_dask_privacy.py)."""

import os
import socket
import subprocess
import sys
import time

import pytest

from sciencelab.proxy_guard import PortOwnership, ProxyGuard, is_local_host


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("[::1]", True),
        ("10.1.2.3", True),  # one of this machine's addresses, below
        ("10.1.2.4", False),
        ("sciencelab-0a1b-scheduler.alice", False),
        ("example.org", False),
    ],
)
def test_hosts_of_this_machine(host, local):
    assert is_local_host(host, {"10.1.2.3"}) is local


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_listener(port: int):
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.1)


async def test_a_port_of_another_users_process_is_refused_and_the_users_own_are_not():
    own_port, detached_port, other_port = free_port(), free_port(), free_port()
    server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
    own = subprocess.Popen([*server, str(own_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Detached from this process (their parent shell exits): the one with this server's JupyterHub
    # user is still the user's own, the one with another user's is not.
    for user, port in (("alice", detached_port), ("bob", other_port)):
        subprocess.run(["sh", "-c", f"JUPYTERHUB_USER={user} {' '.join(server)} {port} >/dev/null 2>&1 &"], check=True)
    try:
        for port in (own_port, detached_port, other_port):
            wait_for_listener(port)
        guard = ProxyGuard(PortOwnership(server_pid=os.getpid(), user="alice"), set)
        assert await guard.refusal("localhost", str(own_port)) is None  # a descendant of this server
        assert await guard.refusal("localhost", str(detached_port)) is None  # the user's, detached
        assert await guard.refusal("127.0.0.1", str(other_port)) == (
            f"port {other_port} belongs to another user's process; this server proxies only your own ports"
        )
        assert await guard.refusal("localhost", str(free_port())) is None  # nothing listens: the proxy says so
        assert await guard.refusal("sciencelab-0a1b-scheduler.alice", "8787") == (
            "sciencelab-0a1b-scheduler.alice is the scheduler of a Dask cluster that is not yours"
        )
        assert await guard.refusal("example.org", "80") is None  # elsewhere: the host allowlist decides
    finally:
        own.kill()
        for port in (detached_port, other_port):
            subprocess.run(["pkill", "-f", f"http.server --bind 127.0.0.1 {port}"], check=False)
