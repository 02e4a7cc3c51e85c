"""A real `dask-gateway-server` on 127.0.0.1 for tests: local backend; simple authentication, or
JupyterHub's (dask-gateway's own `JupyterHubAuthenticator`) as a service of a real hub.

The gateway's proxy binary ships in the dask-gateway-server wheel. distributed 2026 has no
`dask-scheduler`/`dask-worker` scripts, so schedulers and workers start with `dask scheduler` and
`dask worker` from this virtual environment. The scheduler proxy listens on its own port, hence
clients need `proxy_address`.
"""

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from sciencelab_spawner.demo import free_port

from .service_process import wait_until_answering

DASK = Path(sys.executable).parent / "dask"
GATEWAY = Path(sys.executable).parent / "dask-gateway-server"
START_TIMEOUT = 60

# The gateway's own option specification: what its users may choose, with its bounds. Our
# templates map `cores`, `memory` and `idle_timeout` to these fields.
CONFIG = """\
from dask_gateway_server.options import Float, Integer, Options

c.DaskGateway.address = "127.0.0.1:{api_port}"
c.Proxy.address = "127.0.0.1:{http_port}"
c.Proxy.tcp_address = "127.0.0.1:{tcp_port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.LocalBackend.clusters_directory = {clusters!r}
c.ClusterConfig.scheduler_cmd = [{dask!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{dask!r}, "worker"]
c.ClusterConfig.scheduler_memory = "512 M"


def options_handler(options):
    return {{
        "worker_cores": options.worker_cores,
        "worker_memory": int(options.worker_memory * 2**30),
        "idle_timeout": options.idle_timeout * 60,
    }}


c.Backend.cluster_options = Options(
    Integer("worker_cores", 1, min=1, max=2, label="Worker cores"),
    Float("worker_memory", 0.5, min=0.25, max=1, label="Worker memory (GiB)"),
    Float("idle_timeout", 0, min=0, max=60, label="Idle timeout (minutes)"),
    handler=options_handler,
)
"""
SIMPLE_AUTH = """
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
"""
# With a service name the authenticator also requires `access:services!service=<name>` of every token.
JUPYTERHUB_AUTH = """
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
c.JupyterHubAuthenticator.jupyterhub_api_url = {api_url!r}
c.JupyterHubAuthenticator.jupyterhub_api_token = {api_token!r}
c.JupyterHubAuthenticator.jupyterhub_service_name = {service_name!r}
"""


@dataclass(frozen=True)
class HubService:
    """How the gateway is registered with a JupyterHub: its service name and API token, the hub's API URL."""

    name: str
    api_token: str
    api_url: str


class GatewayServer:
    """One `dask-gateway-server` process; its state and log under `state_dir`.

    Without `hub` anyone is let in under the name they give (basic auth, no password); with `hub`
    the gateway asks that JupyterHub who a token belongs to (`GET <api_url>/user`).
    """

    def __init__(self, state_dir: Path, hub: HubService | None = None):
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.http_port, self.tcp_port, api_port = free_port(), free_port(), free_port()
        self.address = f"http://127.0.0.1:{self.http_port}"
        self.proxy_address = f"gateway://127.0.0.1:{self.tcp_port}"
        self.config_path = state_dir / "dask_gateway_config.py"
        auth = (
            SIMPLE_AUTH
            if hub is None
            else JUPYTERHUB_AUTH.format(api_url=hub.api_url, api_token=hub.api_token, service_name=hub.name)
        )
        self.config_path.write_text(
            CONFIG.format(
                api_port=api_port,
                http_port=self.http_port,
                tcp_port=self.tcp_port,
                clusters=str(state_dir / "clusters"),
                dask=str(DASK),
            )
            + auth
        )
        self.config_path.chmod(0o600)  # it may hold the gateway's hub API token
        self.log_path = state_dir / "gateway.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "GatewayServer":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(GATEWAY), "-f", str(self.config_path)], cwd=self.state_dir, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until_answering(
            self.process,
            lambda: requests.get(f"{self.address}/api/health", timeout=2).ok,
            START_TIMEOUT,
            "dask-gateway-server",
            self.log_tail,
        )
        return self

    def clusters(self, user: str | None = None, *, token: str | None = None) -> list[dict]:
        """The pending and running clusters of `user` (simple auth) or of `token`'s owner (JupyterHub
        auth), as the gateway's REST API lists them."""
        credentials = {"headers": {"Authorization": f"jupyterhub {token}"}} if token else {"auth": (user, "")}
        response = requests.get(f"{self.address}/api/v1/clusters/", timeout=10, **credentials)
        response.raise_for_status()
        return list(response.json().values())

    def cluster_processes(self) -> list[psutil.Process]:
        """The schedulers and workers the gateway runs now (its local backend's child processes)."""
        if self.process is None or self.process.poll() is not None:
            return []
        found = []
        for process in psutil.Process(self.process.pid).children(recursive=True):
            try:
                command = process.cmdline()
            except psutil.NoSuchProcess:
                continue
            # `dask scheduler`, run as `<python> <venv>/bin/dask scheduler` (the script's shebang).
            if {"scheduler", "worker"} & set(command[1:3]):
                found.append(process)
        return found

    def stop(self):
        """SIGTERM: the gateway stops its clusters; then make sure no scheduler or worker outlives it."""
        if self.process is None or self.process.poll() is not None:
            return
        descendants = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        _, alive = psutil.wait_procs(descendants, timeout=15)
        for process in alive:
            process.kill()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
