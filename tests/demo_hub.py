"""Drive a real `sciencelab demo` hub from tests and benchmarks: start, REST calls, spawns, forms, stop."""

import contextlib
import html
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urljoin

import requests

from sciencelab_spawner.demo import free_port

from .server_kernel import ServerKernel, running_kernel
from .service_process import TracebackWatch, wait_until_answering

REPO = Path(__file__).resolve().parent.parent
SCIENCELAB_COMMAND = Path(sys.executable).parent / "sciencelab"
START_TIMEOUT = 90  # seconds; a cold hub on a busy 2-core machine
SPAWN_TIMEOUT = 180
XSRF_FIELD = re.compile(r'name="_xsrf" value="([^"]+)"')
# JupyterHub's spawn form carries its XSRF token in the action URL.
SPAWN_FORM_ACTION = re.compile(r'<form[^>]*id="spawn_form"[^>]*action="([^"]+)"', re.S)


class DemoHub:
    """One `sciencelab demo` process, its state under `state_dir`, its log in `state_dir/hub.log`.

    `extra_config` becomes the state dir's `jupyterhub_config.py` (loaded after the demo's own),
    `profiles` its `profiles.yaml`, `env` is added to the hub's environment and `args` to the
    `sciencelab demo` command line (`--oidc-issuer=...`). Fixtures call
    `check_log` after each test and before `stop`, so a test fails when the hub logs a traceback.
    """

    def __init__(
        self,
        state_dir: Path,
        extra_config: str = "",
        profiles: str | None = None,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
    ):
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.admin_password = secrets.token_urlsafe(32)
        self.log_path = state_dir / "hub.log"
        self.profiles_path = state_dir / "profiles.yaml"
        self.env = env or {}
        self.args = list(args)
        self._tokens: dict[str, str] = {}
        self._log_watch = TracebackWatch(self.log_path, "the hub")
        state_dir.mkdir(parents=True, exist_ok=True)
        if extra_config:
            (state_dir / "jupyterhub_config.py").write_text(extra_config)
        if profiles is not None:
            self.profiles_path.write_text(profiles)
        self.process: subprocess.Popen | None = None

    def start(self):
        env = {**os.environ, **self.env}
        # The demo finds JupyterHub's proxy on PATH; `npm ci` puts it in node_modules/.bin.
        env["PATH"] = f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{env['PATH']}"
        # `--name=value`: a generated password may start with '-', which argparse would take for an option.
        command = [
            str(SCIENCELAB_COMMAND),
            "demo",
            f"--port={self.port}",
            f"--state-dir={self.state_dir}",
            f"--password={self.password}",
            f"--admin-password={self.admin_password}",
            *self.args,
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_answering(
            self.process,
            lambda: requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200,
            START_TIMEOUT,
            "the demo hub",
            self.log_tail,
            interval=0.3,
        )
        return self

    def stop(self):
        """Ctrl-C, as a person would; JupyterHub then stops every server and the proxy."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_log(self):
        """Fail, quoting them, if the hub logged tracebacks since the last check.

        A refusal logs one line and a failure a message, never a traceback (the log also holds
        the output of the users' servers). Call it before `stop`: Ctrl-C may interrupt a server
        that is starting, and that traceback is not a failure.
        """
        self._log_watch.check()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def use_token(self, user: str, token: str):
        """Call the API as `user` with `token` (where users have no password: OIDC login)."""
        self._tokens[user] = token

    def token(self, user: str) -> str:
        """An API token of `user`, asked for with the user's password as a script would."""
        if user not in self._tokens:
            password = self.admin_password if user == "admin" else self.password
            response = requests.post(
                f"{self.url}/hub/api/users/{user}/tokens",
                json={"auth": {"username": user, "password": password}, "note": "tests"},
                timeout=30,
            )
            response.raise_for_status()
            self._tokens[user] = response.json()["token"]
        return self._tokens[user]

    def request(self, method: str, path: str, user: str, **kwargs) -> requests.Response:
        """`method` on `path` (relative to the public URL) with `user`'s token."""
        headers = {"Authorization": f"token {self.token(user)}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def spawn(
        self,
        user: str,
        user_options: dict | None,
        server: str = "",
        as_user: str | None = None,
    ) -> requests.Response:
        """Ask for `user`'s `server` (None: a POST without a body, as the admin page's Start button);
        returns the hub's answer once the server is ready or refused."""
        body = {} if user_options is None else {"json": user_options}
        response = self.request("POST", f"/hub/api/users/{user}/servers/{server}", as_user or user, **body)
        if response.status_code in (201, 202):
            self.wait_until_ready(user, server)
        return response

    def server_model(self, user: str, server: str = "") -> dict | None:
        return self.request("GET", f"/hub/api/users/{user}", "admin").json()["servers"].get(server)

    def wait_until_ready(self, user: str, server: str = ""):
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while time.monotonic() < deadline:
            model = self.server_model(user, server)
            if model is None:
                raise RuntimeError(f"{user}'s server {server!r} failed to start:\n{self.log_tail()}")
            if model["ready"]:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{user}'s server {server!r} was not ready in {SPAWN_TIMEOUT}s:\n{self.log_tail()}")

    def stop_server(self, user: str, server: str = ""):
        response = self.request("DELETE", f"/hub/api/users/{user}/servers/{server}", "admin")
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while response.status_code == 202 and time.monotonic() < deadline:
            if self.server_model(user, server) is None:
                return
            time.sleep(0.2)

    @contextlib.contextmanager
    def kernel(self, user: str, server: str = "") -> Iterator[ServerKernel]:
        """A python3 kernel started by `user`'s running server (so with the server's environment),
        reached through the proxy with `user`'s token; shut down afterwards."""
        prefix = f"/user/{user}/{server}/api/kernels" if server else f"/user/{user}/api/kernels"
        with running_kernel(f"{self.url}{prefix}", self.token(user), "python3") as kernel:
            yield kernel

    def browser_session(self, user: str) -> requests.Session:
        """A logged-in session with `user`'s cookies, as a browser without JavaScript has."""
        session = requests.Session()
        login = session.get(f"{self.url}/hub/login", timeout=30)
        password = self.admin_password if user == "admin" else self.password
        response = session.post(
            f"{self.url}/hub/login",
            timeout=30,
            data={"username": user, "password": password, "_xsrf": XSRF_FIELD.search(login.text).group(1)},
        )
        response.raise_for_status()
        return session

    def submit_spawn_form(
        self, session: requests.Session, user: str, fields: dict, server: str = ""
    ) -> requests.Response:
        """GET the spawn form of `user`'s `server`, then POST `fields` with it, as the browser does."""
        page = self.spawn_form(session, user, server)
        action = html.unescape(SPAWN_FORM_ACTION.search(page).group(1))
        return session.post(urljoin(f"{self.url}/hub/", action), data=fields, timeout=SPAWN_TIMEOUT)

    def spawn_form(self, session: requests.Session, user: str, server: str = "") -> str:
        path = f"/hub/spawn/{user}/{server}" if server else f"/hub/spawn/{user}"
        response = session.get(f"{self.url}{path}", timeout=60)
        response.raise_for_status()
        return response.text
