"""Drive a real `jupyter lab` (or `jupyter server`) process on 127.0.0.1 from tests and benchmarks.

No hub: the server authenticates with a random token. Its Jupyter config, data, runtime, lab
settings and root folders live under `state_dir`, so nothing of the machine's own Jupyter setup
leaks in.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import requests

from sciencelab_spawner.demo import free_port

from .server_kernel import ServerKernel, running_kernel
from .service_process import wait_until_answering

JUPYTER = Path(sys.executable).parent / "jupyter"
START_TIMEOUT = 90  # seconds; a cold JupyterLab on a busy 2-core machine
# JupyterLab asks on first start whether to fetch news; a test page should not.
NO_NEWS_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}


class LabServer:
    """One Jupyter server process with its folders under `state_dir`.

    `config` is written to the server's own `jupyter_server_config.json`, `args` are added to its
    command line, `env` to its environment; `jupyter` may be the command of another environment
    (the benchmarks' peers). The port and token stay the same across `stop()` and `start()`, as for
    a server restarted by its user; the log of every run is appended to `state_dir/server.log`.
    """

    def __init__(
        self,
        state_dir: Path,
        config: dict | None = None,
        app: str = "lab",
        env: dict | None = None,
        args: list[str] = (),
        jupyter: Path = JUPYTER,
    ):
        self.state_dir = state_dir
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.args = list(args)
        self.jupyter = jupyter
        self.log_path = state_dir / "server.log"
        self.data_dir = state_dir / "data"
        self.root_dir = state_dir / "root"
        self._env = env or {}
        for folder in (
            self.data_dir,
            self.root_dir,
            state_dir / "config",
            state_dir / "runtime",
            state_dir / "workspaces",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        (state_dir / "config" / "jupyter_server_config.json").write_text(json.dumps(config or {}))
        for name, settings in NO_NEWS_SETTINGS.items():
            path = state_dir / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        self.process: subprocess.Popen | None = None

    def start(self) -> "LabServer":
        env = {
            **os.environ,
            **self._env,
            "JUPYTER_CONFIG_DIR": str(self.state_dir / "config"),
            "JUPYTER_DATA_DIR": str(self.data_dir),
            "JUPYTER_RUNTIME_DIR": str(self.state_dir / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(self.state_dir / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.state_dir / "workspaces"),
        }
        command = [
            str(self.jupyter),
            self.app,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            *self.args,
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with open(self.log_path, "ab") as log:
            # In its own folder, as a user's server runs in their home: what it writes where it runs
            # (jupyter-collaboration's `.jupyter_ystore.db`) stays out of the repository.
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.state_dir
            )
        wait_until_answering(
            self.process,
            lambda: self.request("GET", "api/status").status_code == 200,
            START_TIMEOUT,
            f"jupyter {self.app}",
            self.log_tail,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM):
        """Stop the server with `sig` (SIGKILL: a crash) and wait for it; killed if it hangs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def request(self, method: str, path: str, body=None, timeout: float = 60) -> requests.Response:
        """`method` on `path` (from the server root), with `body` as JSON, with the token."""
        return requests.request(
            method,
            f"{self.url}/{path.lstrip('/')}",
            json=body,
            timeout=timeout,
            headers={"Authorization": f"token {self.token}"},
        )

    @contextlib.contextmanager
    def kernel(self, name: str) -> Iterator[ServerKernel]:
        """A kernel of kernelspec `name` started by this server, as a notebook's; shut down afterwards."""
        with running_kernel(f"{self.url}/api/kernels", self.token, name) as kernel:
            yield kernel

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kernel_pid(self, kernel_id: str) -> int:
        """The PID of a kernel of this server: the child process started with the kernel's connection file."""
        connection_file = f"kernel-{kernel_id}.json"
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    arguments = (entry / "cmdline").read_bytes().split(b"\0")
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if parent == self.process.pid and any(arg.decode().endswith(connection_file) for arg in arguments):
                    return int(entry.name)
        raise LookupError(f"no process of kernel {kernel_id} under the server (PID {self.process.pid})")
