"""REST and WebSocket handlers of the Dask cluster manager: parse, call the `ClusterManager`, return JSON.

Routes, below `<base_url>sciencelab/api/dask/`::

    GET                 templates             the user's templates with their option schemas
    GET, POST           clusters              list; create ({"template", "options"}) -> 201
    GET, PATCH, DELETE  clusters/<id>         one cluster; scale ({"workers"} or {"adapt"}); shut down
    GET                 clusters/<id>/logs    scheduler and worker logs
    WebSocket           clusters/updates      the user's clusters, pushed after every change

Errors answer `{"message": ...}` (with `field` and `value` for a bad option) and the status of the
`ClusterError` raised: 400, 403, 404, 502 or 503; a body that is not JSON we read is a 400
(`request_json`). A WebSocket message that is not `{"interval": seconds}` is answered on the socket
with `{"type": "error", "message": ...}` and logged in one line.
"""

import getpass
import json
import time
from collections.abc import Awaitable, Callable

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..request_json import MAX_BYTES_SETTING, JsonAPIHandler, JsonInputError, read_json
from .errors import ClusterError, OptionError
from .manager import ClusterManager
from .options import validate_update_interval

# Any segment: the manager answers a JSON 404 naming an unknown id.
CLUSTER_ID = r"(?P<cluster_id>[^/]+)"


def user_identity(current_user) -> tuple[str, list[str]]:
    """Who owns the clusters a request acts on: name and JupyterHub groups.

    Under JupyterHub the identity provider puts the hub's user model in `hub_user`; the hub always
    includes the groups there (its "identify" scopes include `read:users:groups!user`), so no extra
    call to the hub API is needed, and a user the owner shares the server with gets their own
    clusters. A plain Jupyter server belongs to the account running it: its token login makes up a
    new anonymous name for every request, so that account's name is used instead, with no groups.
    """
    hub_user = getattr(current_user, "hub_user", None)
    if hub_user:
        return hub_user["name"], list(hub_user.get("groups") or [])
    return getpass.getuser(), []


class DaskHandler(ExtensionHandlerMixin, JsonAPIHandler):
    """Base of the REST handlers: the manager, the caller's identity, one way to answer."""

    @property
    def manager(self) -> ClusterManager:
        return self.settings["sciencelab_dask"]

    @property
    def identity(self) -> tuple[str, list[str]]:
        return user_identity(self.current_user)

    async def answer(self, call: Callable[[], Awaitable], status: int = 200):
        """Answer what `call()` returns with `status`, or the refusal it raised (reading the body included)."""
        try:
            result = await call()
        except ClusterError as error:
            self.refuse(error.status_code, error.message, **error.details)
            return
        except JsonInputError as error:
            self.refuse(400, str(error))
            return
        self.set_status(status)
        self.finish(json.dumps(result) if status != 204 else None)


class TemplatesHandler(DaskHandler):
    @web.authenticated
    async def get(self):
        await self.answer(lambda: self.manager.list_templates(*self.identity))


class ClustersHandler(DaskHandler):
    @web.authenticated
    async def get(self):
        await self.answer(lambda: self.manager.list_clusters(*self.identity))

    @web.authenticated
    async def post(self):
        await self.answer(lambda: self.manager.create_cluster(*self.identity, self.json_body()), status=201)


class ClusterHandler(DaskHandler):
    @web.authenticated
    async def get(self, cluster_id: str):
        await self.answer(lambda: self.manager.get_cluster(self.identity[0], cluster_id))

    @web.authenticated
    async def patch(self, cluster_id: str):
        await self.answer(lambda: self.manager.update_cluster(*self.identity, cluster_id, self.json_body()))

    @web.authenticated
    async def delete(self, cluster_id: str):
        await self.answer(lambda: self.manager.delete_cluster(self.identity[0], cluster_id), status=204)


class ClusterLogsHandler(DaskHandler):
    @web.authenticated
    async def get(self, cluster_id: str):
        await self.answer(lambda: self.manager.cluster_logs(self.identity[0], cluster_id))


class ClusterUpdatesHandler(ExtensionHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """One WebSocket per browser tab: `{"type": "clusters", "clusters": [...]}` after every change.

    The client may send `{"interval": seconds}` to receive at most one update per interval (the
    lab's "update rate" setting); the latest state is always delivered. Any other message is
    answered `{"type": "error", "message": ...}`, naming the problem, and the socket stays open.
    """

    def set_default_headers(self):
        """JupyterHandler's headers (CSP and the like) mean nothing on a WebSocket upgrade."""

    @ws_authenticated  # jupyter_server's WebSocket form of @web.authenticated: 403, no login redirect
    async def get(self, *args, **kwargs):
        await self.settings["sciencelab_dask"].start()
        await super().get(*args, **kwargs)

    def open(self):
        super().open()
        self._interval = 0.0
        self._last_sent = 0.0
        self._pending: list | None = None
        self._timer = None
        self._unsubscribe = self.settings["sciencelab_dask"].subscribe(*user_identity(self.current_user), self._push)

    def on_message(self, message):
        try:
            self._interval = validate_update_interval(
                read_json(message, self.settings[MAX_BYTES_SETTING], what="message")
            )
        except (JsonInputError, OptionError) as error:
            self.log.warning("Dask updates WebSocket of %s: refused %s", user_identity(self.current_user)[0], error)
            self._send(json.dumps({"type": "error", "message": str(error)}))

    def on_close(self):
        self._unsubscribe()
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)

    def _push(self, clusters: list):
        self._pending = clusters
        wait = self._last_sent + self._interval - time.monotonic()
        if wait <= 0:
            self._flush()
        elif self._timer is None:
            self._timer = IOLoop.current().call_later(wait, self._flush)

    def _flush(self):
        self._timer = None
        if self._pending is None:
            return
        message, self._pending = json.dumps({"type": "clusters", "clusters": self._pending}), None
        self._last_sent = time.monotonic()
        self._send(message)

    def _send(self, message: str):
        try:
            self.write_message(message)
        except WebSocketClosedError:
            pass  # the tab went away; on_close unsubscribes


def make_handlers() -> list[tuple[str, type]]:
    """The Dask routes, relative to the server's base URL (the extension app prefixes it)."""
    prefix = r"/sciencelab/api/dask"
    return [
        (rf"{prefix}/templates", TemplatesHandler),
        (rf"{prefix}/clusters", ClustersHandler),
        (rf"{prefix}/clusters/updates", ClusterUpdatesHandler),
        (rf"{prefix}/clusters/{CLUSTER_ID}", ClusterHandler),
        (rf"{prefix}/clusters/{CLUSTER_ID}/logs", ClusterLogsHandler),
    ]
