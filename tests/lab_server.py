"""Drive a real `jupyter lab` (or `jupyter server`) on loopback from tests and benchmarks.

No hub: the server authenticates with a random token. Its Jupyter config, data and lab settings
live under `state_dir`, so nothing of the machine's own Jupyter setup leaks in.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from sciencelab_spawner.demo import free_port

START_TIMEOUT = 90  # seconds; a cold server on a busy 2-core machine
# JupyterLab asks on first start whether to fetch news; a test page should not.
NO_NEWS_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}


class LabServer:
    """One `jupyter <app>` process on 127.0.0.1:`port` with `token`; its log in `state_dir/server.log`."""

    def __init__(self, state_dir: Path, args: list[str] = (), env: dict[str, str] | None = None, app: str = "lab",
                 config: dict | None = None):
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(24)
        self.log_path = state_dir / "server.log"
        self.args = list(args)
        self.env = env or {}
        self.app = app
        self.config = config or {}  # written to the server's own jupyter_server_config.json
        self.process: subprocess.Popen | None = None

    def start(self) -> "LabServer":
        for folder in ("root", "config", "data", "runtime", "settings", "workspaces"):
            (self.state_dir / folder).mkdir(parents=True, exist_ok=True)
        for name, settings in NO_NEWS_SETTINGS.items():
            path = self.state_dir / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(settings))
        (self.state_dir / "config" / "jupyter_server_config.json").write_text(json.dumps(self.config))
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.state_dir / "config"),
            "JUPYTER_RUNTIME_DIR": str(self.state_dir / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(self.state_dir / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.state_dir / "workspaces"),
            **self.env,
        }
        command = [
            str(Path(sys.executable).parent / f"jupyter-{self.app}"),
            "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.state_dir / 'root'}", "--ServerApp.port_retries=0", *self.args,
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.request("GET", "/api/status").status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"jupyter {self.app} did not answer in {START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM: the server shuts its kernels down and exits; killed if it hangs."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """`method` on `path` (from the server root) with the token."""
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

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
