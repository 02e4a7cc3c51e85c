"""Session lifetimes in the server: `GET/POST /sciencelab/api/session` relays this server's deadline
(and Extend) to the hub's `sciencelab` service, and busy kernels and GPUs count as activity.

The hub service decides when a server stops (`sciencelab_spawner/session_keeper.py`): at its
deadline, or once the hub has heard of no activity for the profile's idle timeout. JupyterHub's
single-user server reports jupyter_server's `last_activity` to the hub; a kernel running a long
loop or a GPU at work sends no request, so `ActivityReporter` marks them active through
jupyter_server's `last_activity_times` setting, which `last_activity` includes.
"""

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import PeriodicCallback

from .request_json import JsonAPIHandler, JsonInputError

SERVICE_URL_ENV = "SCIENCELAB_SERVICE_URL"  # set by the hub (`hub_config.configure_sciencelab`)
SERVICE_PATH = "services/sciencelab/"
SESSION_SETTING = "sciencelab_session"
# Seconds between two looks at the kernels and GPUs: at most this, and at most JupyterHub's
# activity interval (`JUPYTERHUB_ACTIVITY_INTERVAL`, 300 s by default), so every report is fresh.
LONGEST_ACTIVITY_CHECK = 60.0
ACTIVITY_SOURCE = "sciencelab"


def make_deadline_url(environ: Mapping[str, str]) -> str | None:
    """Where the hub service answers this server's deadline; None outside a ScienceLab hub."""
    base, user = environ.get(SERVICE_URL_ENV), environ.get("JUPYTERHUB_USER")
    if not base or not user:
        return None
    server = environ.get("JUPYTERHUB_SERVER_NAME", "")
    path = f"servers/{quote(server, safe='')}" if server else "server"
    return url_path_join(
        base, environ.get("JUPYTERHUB_BASE_URL", "/"), SERVICE_PATH, "api/users", quote(user, safe=""), path, "deadline"
    )


class SessionRelay:
    """This server's requests to the hub service, with the server's own token."""

    def __init__(self, environ: Mapping[str, str]):
        self.url = make_deadline_url(environ)
        self.token = environ.get("JUPYTERHUB_API_TOKEN", "")
        self.http = AsyncHTTPClient()

    async def request(self, method: str) -> tuple[int, dict]:
        """(status, document) for GET (the deadline) or POST (Extend)."""
        if self.url is None:
            return 200, {"managed": False}
        request = HTTPRequest(
            self.url,
            method=method,
            body="{}" if method == "POST" else None,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            request_timeout=20,
        )
        try:
            response = await self.http.fetch(request)
        except HTTPClientError as error:
            message = _message(error.response.body if error.response else b"") or f"HTTP {error.code}"
            if method == "GET" and error.code in (404, 409):
                # Starting, stopping, or started before lifetimes: no session to show (yet).
                return 200, {"managed": False, "message": message}
            if error.code < 500:  # a refusal (an Extend past the cap): its message says it all
                return error.code, {"message": message}
            return 502, {"message": f"The hub's session service failed: {message}"}
        except OSError as error:
            return 503, {"message": f"The hub's session service cannot be reached: {error}"}
        return 200, {"managed": True, **json.loads(response.body)}


def _message(body: bytes) -> str | None:
    try:
        return json.loads(body).get("message")
    except (ValueError, AttributeError):
        return None


class SessionHandler(ExtensionHandlerMixin, JsonAPIHandler):
    """`GET /sciencelab/api/session`: this server's deadline; `POST` with `{}`: Extend once."""

    @web.authenticated
    async def get(self):
        await self.relay("GET")

    @web.authenticated
    async def post(self):
        try:
            body = self.json_body()
        except JsonInputError as error:
            return self.refuse(400, str(error))
        if body not in (None, {}):
            return self.refuse(400, "body: send {} (or nothing) to extend this server's session", value=body)
        await self.relay("POST")

    async def relay(self, method: str):
        """Answer with what the hub service answered `method` on this server's deadline."""
        status, document = await self.settings[SESSION_SETTING].request(method)
        self.set_status(status)
        self.finish(json.dumps(document))


def make_handlers() -> list[tuple[str, type]]:
    return [(r"/sciencelab/api/session", SessionHandler)]


class ActivityReporter:
    """Marks the server active while a kernel is busy or a GPU works above the monitor's idle
    threshold (`gpu_busy`: None without the GPU monitor)."""

    def __init__(
        self,
        settings: dict,
        kernel_manager,
        gpu_busy: Callable[[], Awaitable[bool]] | None,
        interval: float,
    ):
        self.settings = settings
        self.kernel_manager = kernel_manager
        self.gpu_busy = gpu_busy
        self._callback = PeriodicCallback(self.check, interval * 1000)

    def start(self):
        self._callback.start()

    def stop(self):
        self._callback.stop()

    async def check(self):
        busy = any(kernel.get("execution_state") == "busy" for kernel in self.kernel_manager.list_kernels())
        if not busy and self.gpu_busy is not None:
            busy = await self.gpu_busy()
        if busy:
            self.settings.setdefault("last_activity_times", {})[ACTIVITY_SOURCE] = datetime.now(UTC)


def activity_check_interval(environ: Mapping[str, str]) -> float:
    """Seconds between two `ActivityReporter` checks for this server's activity interval."""
    try:
        hub_interval = float(environ.get("JUPYTERHUB_ACTIVITY_INTERVAL") or 300)
    except ValueError:
        hub_interval = 300.0
    return max(0.5, min(LONGEST_ACTIVITY_CHECK, hub_interval / 2))


def make_gpu_busy(sampler) -> Callable[[], Awaitable[bool]]:
    """Whether any GPU the monitor sees works at or above its idle threshold."""

    async def gpu_busy() -> bool:
        current = (await sampler.snapshot())["current"]
        return any(
            (gpu.get("utilization") or {}).get("gpu", 0) >= sampler.idle_threshold for gpu in current.get("gpus", ())
        )

    return gpu_busy
