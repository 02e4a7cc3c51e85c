"""The proxy guard: this server's `/proxy/...` routes reach only ports its own user opened.

jupyter-server-proxy forwards `<base_url>proxy/<port>/...` (and `proxy/<host>:<port>/...` for
allowed hosts) to whatever listens on that port. Where several users' servers share a machine, as
in the embedded mode, that includes another user's Dask dashboard and scheduler. The guard answers
the same paths first (`compat.tornado.add_handlers_first`) with jupyter-server-proxy's own handler
classes, configured as it configures them, and refuses with 403 a port on this machine whose
listening process is not this server's user's:

- this server process or one of its descendants (kernels, terminals, Dask schedulers and workers);
- or a process whose environment names this server's JupyterHub user (`JUPYTERHUB_USER`, which
  every process of the user's server inherits, also one that detached from its parent).

On Kubernetes, the Dask schedulers of the `kubernetes` backend are other hosts
(`sciencelab-<cluster id>-scheduler.<namespace>`): one of those is reached only when the cluster is
one of this server's. A port nothing listens on is left to jupyter-server-proxy, which answers that
it cannot connect.
"""

import asyncio
import ipaddress
import json
import os
import re
import socket
from collections.abc import Callable

import psutil
from jupyter_server.utils import url_path_join
from jupyter_server_proxy.config import ServerProxy
from jupyter_server_proxy.handlers import LocalProxyHandler, RemoteProxyHandler

from .compat.tornado import add_handlers_first

GUARD_SETTING = "sciencelab_proxy_guard"
USER_ENV = "JUPYTERHUB_USER"
# The Services of the `kubernetes` Dask backend's schedulers (see dask/backends/kubernetes.py).
SCHEDULER_HOST = re.compile(r"^sciencelab-(?P<cluster_id>[0-9a-f]+)-scheduler(\.|$)")


def is_local_host(host: str, local_addresses: set[str]) -> bool:
    """Whether `host` (a name or an address from a proxy path) is this machine (pure, given its addresses)."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or str(address) in local_addresses


def owned_by(process: psutil.Process, server_pid: int, user: str | None) -> bool:
    """Whether `process` belongs to this server's user: the server, a descendant, or the user's by environment."""
    try:
        if process.pid == server_pid or any(parent.pid == server_pid for parent in process.parents()):
            return True
        return user is not None and process.environ().get(USER_ENV) == user
    except psutil.Error:  # gone, or another account's: not ours to show
        return False


def listens_on(process: psutil.Process, port: int) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in process.net_connections("tcp"))
    except psutil.Error:
        return False


class PortOwnership:
    """Who listens on a port of this machine, and whether that is this server's user (blocking I/O)."""

    def __init__(self, server_pid: int, user: str | None):
        self.server_pid = server_pid
        self.user = user
        self._allowed: dict[int, psutil.Process] = {}  # port -> the user's process that listened on it

    def refusal(self, port: int) -> str | None:
        """None when the port is this server's user's (or nothing listens on it), else why not."""
        known = self._allowed.get(port)
        if known is not None and known.is_running() and listens_on(known, port):
            return None
        server = psutil.Process(self.server_pid)
        for process in [server, *server.children(recursive=True)]:  # the usual case: cheap, own processes only
            if listens_on(process, port):
                self._allowed[port] = process
                return None
        try:
            listeners = {
                c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            }
        except psutil.AccessDenied:
            return f"port {port}: this server cannot tell which process listens on it, so it does not proxy it"
        if not listeners:
            return None
        for pid in listeners:
            process = psutil.Process(pid) if pid is not None else None
            if process is None or not owned_by(process, self.server_pid, self.user):
                return f"port {port} belongs to another user's process; this server proxies only your own ports"
        self._allowed[port] = psutil.Process(next(iter(listeners)))
        return None


class ProxyGuard:
    """Decides, per proxy request, whether the host and port are this server's user's to reach."""

    def __init__(self, ownership: PortOwnership, own_kubernetes_clusters: Callable[[], set[str]]):
        """:param own_kubernetes_clusters: the ids of this server's Kubernetes Dask clusters, now."""
        self.ownership = ownership
        self.own_kubernetes_clusters = own_kubernetes_clusters
        self.local_addresses = {
            address.address.split("%")[0]
            for addresses in psutil.net_if_addrs().values()
            for address in addresses
            if address.family in (socket.AF_INET, socket.AF_INET6)
        }

    async def refusal(self, host: str, port: str) -> str | None:
        match = SCHEDULER_HOST.match(host)
        if match and match["cluster_id"] not in self.own_kubernetes_clusters():
            return f"{host[:80]} is the scheduler of a Dask cluster that is not yours"
        if not await self._is_this_machine(host):
            return None  # elsewhere: jupyter-server-proxy's host_allowlist decides
        return await asyncio.to_thread(self.ownership.refusal, int(port))

    async def _is_this_machine(self, host: str) -> bool:
        if is_local_host(host, self.local_addresses):
            return True
        try:  # a name of this machine (its host name, an alias the admin allowed)
            found = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError:
            return False  # jupyter-server-proxy will not reach it either
        return any(is_local_host(address[4][0], self.local_addresses) for address in found)


class GuardedProxy:
    """Checks the guard before jupyter-server-proxy's handler proxies anything (HTTP or WebSocket)."""

    async def prepare(self, *args, **kwargs):
        await super().prepare(*args, **kwargs)  # authentication first: 403 or a login redirect
        if self._finished:
            return
        host, port = self.proxy_target()
        refusal = await self.settings[GUARD_SETTING].refusal(host, port)
        if refusal is not None:
            self.log.warning("Proxy refused for %s: %s", self.current_user.username, refusal)
            self.set_status(403)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": refusal}))  # the handler's method is not called


class GuardedLocalProxyHandler(GuardedProxy, LocalProxyHandler):
    def proxy_target(self) -> tuple[str, str]:
        return "localhost", self.path_args[0]


class GuardedRemoteProxyHandler(GuardedProxy, RemoteProxyHandler):
    def proxy_target(self) -> tuple[str, str]:
        return self.path_args[0], self.path_args[1]


def install_proxy_guard(serverapp, own_kubernetes_clusters: Callable[[], set[str]]):
    """Put the guarded handlers before jupyter-server-proxy's generic `/proxy/` routes, with its settings."""
    config = ServerProxy(parent=serverapp)
    base_url = serverapp.web_app.settings["base_url"]
    rewrite = {"rewrite_response": config.non_service_rewrite_response}
    remote = {**rewrite, "host_allowlist": config.host_allowlist}
    handlers = [
        (
            url_path_join(base_url, r"/proxy/absolute/([^/:@]+):(\d+)(/.*|)"),
            GuardedRemoteProxyHandler,
            {**remote, "absolute_url": True},
        ),
        (
            url_path_join(base_url, r"/proxy/([^/:@]+):(\d+)(/.*|)"),
            GuardedRemoteProxyHandler,
            {**remote, "absolute_url": False},
        ),
        (
            url_path_join(base_url, r"/proxy/absolute/(\d+)(/.*|)"),
            GuardedLocalProxyHandler,
            {**rewrite, "absolute_url": True},
        ),
        (url_path_join(base_url, r"/proxy/(\d+)(/.*|)"), GuardedLocalProxyHandler, {**rewrite, "absolute_url": False}),
    ]
    serverapp.web_app.settings[GUARD_SETTING] = ProxyGuard(
        PortOwnership(os.getpid(), os.environ.get(USER_ENV)), own_kubernetes_clusters
    )
    add_handlers_first(serverapp.web_app, handlers)
