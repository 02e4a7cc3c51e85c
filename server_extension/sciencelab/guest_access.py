"""Guests lose a shared server within seconds of losing access: their HTTP requests and every
WebSocket they have open (kernels, terminals, events, collaborative documents).

JupyterHub decides at each lookup who may use a server (a share, a group share, a role), but the
server caches each answer 300 s (`HubAuth.cache_max_age`) and checks a WebSocket only when it
opens. Here:

- `GuestAwareCache` (compat/jupyterhub.py) keeps the owner's answers 300 s, and the others'
  (guests, refusals) `GuestAccess.guest_cache_seconds`;
- `SocketRegisteringAuthorizer` wraps the server's authorizer, which jupyter_server asks before
  every WebSocket opens, and notes each guest's socket with the token it was opened with;
- when the hub says who may use this server changed (`POST /sciencelab/api/access-changed`, sent
  by `sciencelab_spawner.share_watch` right after the change is committed), the guests' cached
  answers are dropped and every guest with an open socket is looked up again; a guest the hub no
  longer lets in has their sockets closed with a message. A sweep every
  `GuestAccess.sweep_interval_seconds` does the same for sockets, in case a notice was lost.

The notice is authenticated by a signature with this server's own key (ACCESS_KEY_ENV), which the
hub derives and signs with (`share_watch.make_access_key`, `share_watch.make_push_signature`):
`t=<unix seconds>,sha256=<hex HMAC-SHA256(key, "<t>\\n" + body)>`, accepted within
`push_max_skew_seconds`. The notice only makes the server ask the hub again, so a replay within
that window costs a few lookups and opens nothing.
"""

import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
import weakref
from collections.abc import Mapping

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.serverapp import ServerApp
from jupyter_server.utils import ensure_async
from tornado import web
from tornado.ioloop import PeriodicCallback
from tornado.websocket import WebSocketHandler
from traitlets import Float, Instance
from traitlets.config import LoggingConfigurable

from .compat.jupyterhub import GuestAwareCache

# Set by the hub (`sciencelab_spawner.share_watch`): this server's key for the hub's notices.
ACCESS_KEY_ENV = "SCIENCELAB_ACCESS_KEY"
# Made by the hub (`sciencelab_spawner.share_watch.make_push_signature`).
SIGNATURE_HEADER = "X-Sciencelab-Signature"
GUEST_ACCESS_SETTING = "sciencelab_guest_access"
# RFC 6455 5.5: a close frame's payload is at most 125 bytes, 2 of them the code.
MAX_CLOSE_REASON_BYTES = 123
# JupyterLab's document provider shows a close of a document room with this code and a JSON
# reason as a "Session expired" dialog with our words (jupyter-collaboration's yprovider.ts).
DOCUMENT_CLOSE_CODE = 1003
# Any other socket: an application code (4000-4999) that JupyterLab's reconnect then meets as a 403.
SOCKET_CLOSE_CODE = 4403
# Before its sockets close, the guest's lab hears why (JupyterLab shows nothing when a kernel's
# socket closes): an event on the server's event bus, which the lab's sharing plugin shows.
ACCESS_REVOKED_EVENT = "https://sciencelab.dev/events/access-revoked/v1"
ACCESS_REVOKED_SCHEMA = {
    "$id": ACCESS_REVOKED_EVENT,
    "version": "1",
    "title": "Access revoked",
    "description": "A guest of this shared server lost access to it; their sockets close next.",
    "type": "object",
    "properties": {"user": {"type": "string"}, "message": {"type": "string"}},
    "required": ["user", "message"],
}
# Seconds between the event and closing the sockets, which include the guest's event socket.
EVENT_LEAD_SECONDS = 0.3


def check_push_signature(key: str, header: str, body: bytes, now: float, max_skew: float) -> str | None:
    """Why a notice signed `header` with `body` is refused at `now` (unix seconds); None when
    `key` signed it less than `max_skew` seconds from `now`."""
    if not key:
        return "this server has no access key (it was not started by a ScienceLab hub)"
    fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
    try:
        signed_at = int(fields.get("t", ""))
    except ValueError:
        return f"{SIGNATURE_HEADER}: no t=<unix seconds>"
    if abs(now - signed_at) > max_skew:
        return f"{SIGNATURE_HEADER}: signed {now - signed_at:.0f} s ago, more than {max_skew:.0f} s"
    expected = hmac.new(key.encode(), f"{signed_at}\n".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("sha256", "")):
        return f"{SIGNATURE_HEADER}: not signed with this server's key"
    return None


def make_close_reason(document: bool, owner: str, server: str) -> str:
    """What a guest's socket is closed with: for a document room, the JSON JupyterLab shows as a
    dialog; for other sockets, a short text. Both fit a close frame (MAX_CLOSE_REASON_BYTES)."""
    where = f"{owner}/{server}" if server else owner
    if not document:
        return fit_close_reason(f"access to {where} revoked", lambda text: text)
    return fit_close_reason(
        f"Your access to {where} was revoked.",
        lambda text: json.dumps(
            {"reason": "unknown_session", "reloadable": False, "errorReason": text}, separators=(",", ":")
        ),
    )


def make_revoked_message(owner: str, server: str) -> str:
    """What the guest's lab shows when their access ends."""
    where = f"{owner}'s server {server!r}" if server else f"{owner}'s server"
    return (
        f"You no longer have access to {where}: it is no longer shared with you. Its notebooks and "
        "kernels are closed in this window; ask its owner to share it again if you need it."
    )


def fit_close_reason(text: str, render) -> str:
    """`render(text)`, with `text` cut short (ending in "…") until it fits a close frame."""
    reason = render(text)
    while len(reason.encode()) > MAX_CLOSE_REASON_BYTES:
        text = text[:-2] + "…"
        reason = render(text)
    return reason


def is_document_room(handler: WebSocketHandler) -> bool:
    """Whether `handler` is a jupyter-collaboration document room (only if that extension is loaded)."""
    handlers = sys.modules.get("jupyter_server_ydoc.handlers")
    return handlers is not None and isinstance(handler, handlers.YDocWebSocketHandler)


class GuestAccess(LoggingConfigurable):
    """The guests of this server: their cached lookups, their open sockets, and the re-checks."""

    guest_cache_seconds = Float(
        30.0,
        min=0.5,
        config=True,
        help="""How long the server trusts the hub's answer about a guest, in seconds.

        Default 30. The owner's answers are kept as JupyterHub keeps them (`HubAuth.cache_max_age`,
        300 s); a guest's, or a refusal, this long. The hub's notice of a changed share drops them at
        once: this only bounds how long a lost notice lets a revoked guest's HTTP requests through
        (or keeps a new guest out). Shorter costs the hub one lookup per active guest this often.
        Example: `c.GuestAccess.guest_cache_seconds = 10`.
        """,
    )
    sweep_interval_seconds = Float(
        30.0,
        min=1.0,
        config=True,
        help="""How often the server asks the hub about each guest with an open WebSocket, in seconds.

        Default 30. The hub's notice of a changed share makes the server ask at once; this sweep
        closes a revoked guest's sockets even when that notice was lost (a hub restart at the wrong
        moment). It costs the hub one lookup per connected guest per sweep, none without guests.
        Example: `c.GuestAccess.sweep_interval_seconds = 60`.
        """,
    )
    push_max_skew_seconds = Float(
        60.0,
        min=1.0,
        config=True,
        help="""How old (or how far ahead, for clocks that differ) a hub's notice may be, in seconds.

        Default 60. Notices are signed with their time; an older one is refused. Example:
        `c.GuestAccess.push_max_skew_seconds = 300` where the hub's and servers' clocks drift.
        """,
    )

    hub_auth = Instance("jupyterhub.services.auth.HubAuth")
    event_logger = Instance("jupyter_events.EventLogger", allow_none=True)

    def __init__(self, owner: str, server: str, access_key: str, **kwargs):
        super().__init__(**kwargs)
        self.owner = owner
        self.server = server
        self.access_key = access_key
        # (guest, token, session id) -> that guest's open sockets with that token
        self.sockets: dict[tuple[str, str, str], weakref.WeakSet] = {}
        self._sweep: PeriodicCallback | None = None
        self._recheck: asyncio.Task | None = None
        self._recheck_again = False

    def start(self):
        self.hub_auth.cache = GuestAwareCache(self.owner, self.hub_auth.cache_max_age, self.guest_cache_seconds)
        self._sweep = PeriodicCallback(self.request_recheck, self.sweep_interval_seconds * 1000, jitter=0.1)
        self._sweep.start()

    def stop(self):
        if self._sweep is not None:
            self._sweep.stop()

    def is_allowed(self, username: str, model: dict | None) -> bool:
        """Whether the hub's answer `model` about `username`'s token still lets them use this server."""
        if model is None or model.get("name") != username:
            return False
        return bool(self.hub_auth.check_scopes(self.hub_auth.access_scopes, model))

    def register(self, handler: WebSocketHandler, username: str):
        """Note a socket `username` is opening, if they are a guest."""
        if username == self.owner:
            return
        token = self.hub_auth.get_token(handler) or ""
        key = (username, token, self.hub_auth.get_session_id(handler) or "")
        self.sockets.setdefault(key, weakref.WeakSet()).add(handler)

    def check_push(self, header: str, body: bytes) -> str | None:
        return check_push_signature(self.access_key, header, body, time.time(), self.push_max_skew_seconds)

    def access_changed(self):
        """The hub's notice: forget what it said about guests, then ask again about connected ones."""
        forgotten = self.hub_auth.cache.forget_guests()
        self.log.info("The hub says access to this server changed: %d guest answers forgotten", forgotten)
        self.request_recheck()

    def request_recheck(self):
        """Re-check connected guests now, or once more right after the re-check under way."""
        if self._recheck is not None and not self._recheck.done():
            self._recheck_again = True
            return
        self._recheck = asyncio.ensure_future(self._recheck_guests())

    async def _recheck_guests(self):
        while True:
            self._recheck_again = False
            for key in [key for key, sockets in self.sockets.items() if not sockets]:
                del self.sockets[key]
            if self.sockets:
                await asyncio.gather(*(self._recheck_guest(key) for key in list(self.sockets)))
            if not self._recheck_again:
                return

    async def _recheck_guest(self, key: tuple[str, str, str]):
        username, token, session_id = key
        try:
            model = await self.hub_auth.user_for_token(token, use_cache=False, session_id=session_id, sync=False)
        except web.HTTPError as error:
            # The hub is unreachable: keep the sockets, the next notice or sweep asks again.
            self.log.warning("Could not re-check %s's access with the hub: %s", username, error.log_message)
            return
        if self.is_allowed(username, model):
            return
        sockets = list(self.sockets.pop(key, ()))
        self.log.info("%s may no longer use this server: closing their %d sockets", username, len(sockets))
        if self.event_logger is not None:
            message = make_revoked_message(self.owner, self.server)
            self.event_logger.emit(schema_id=ACCESS_REVOKED_EVENT, data={"user": username, "message": message})
            await asyncio.sleep(EVENT_LEAD_SECONDS)
        for handler in sockets:
            document = is_document_room(handler)
            handler.close(
                DOCUMENT_CLOSE_CODE if document else SOCKET_CLOSE_CODE,
                make_close_reason(document, self.owner, self.server),
            )


class SocketRegisteringAuthorizer(Authorizer):
    """The server's authorizer (`inner`), also telling `guest_access` of every WebSocket it allows.

    jupyter_server asks the authorizer before each kernel, terminal, event and document socket
    opens; HTTP requests go through it too and are only passed on.
    """

    inner = Instance(Authorizer)
    guest_access = Instance(GuestAccess)

    async def is_authorized(self, handler, user, action: str, resource: str) -> bool:
        allowed = await ensure_async(self.inner.is_authorized(handler, user, action, resource))
        if allowed and isinstance(handler, WebSocketHandler):
            self.guest_access.register(handler, user.username)
        return allowed


class AccessChangedHandler(web.RequestHandler):
    """`POST /sciencelab/api/access-changed`: the hub's notice that who may use this server changed.

    Authenticated by the hub's signature (module docstring), never by a cookie or a user's token.
    """

    def get_current_user(self):
        guest_access: GuestAccess | None = self.settings.get(GUEST_ACCESS_SETTING)
        if guest_access is None:
            return None
        refusal = guest_access.check_push(self.request.headers.get(SIGNATURE_HEADER, ""), self.request.body)
        if refusal is not None:
            guest_access.log.warning("Refused a notice of changed access: %s", refusal)
            return None
        return "jupyterhub"

    def check_xsrf_cookie(self):
        """Nothing to check: a cookie never authenticates this request, the signed body does."""

    @web.authenticated
    def post(self):
        self.settings[GUEST_ACCESS_SETTING].access_changed()
        self.set_status(204)


def make_handlers() -> list[tuple[str, type]]:
    return [(r"/sciencelab/api/access-changed", AccessChangedHandler)]


def install_guest_access(
    parent: LoggingConfigurable, serverapp: ServerApp, environ: Mapping[str, str] = os.environ
) -> GuestAccess | None:
    """Watch the guests of `serverapp`, a JupyterHub single-user server; None for any other server."""
    from jupyterhub.singleuser.extension import JupyterHubIdentityProvider

    identity_provider = serverapp.identity_provider
    if not isinstance(identity_provider, JupyterHubIdentityProvider) or "JUPYTERHUB_USER" not in environ:
        return None
    guest_access = GuestAccess(
        environ["JUPYTERHUB_USER"],
        environ.get("JUPYTERHUB_SERVER_NAME", ""),
        environ.get(ACCESS_KEY_ENV, ""),
        parent=parent,
        hub_auth=identity_provider.hub_auth,
        event_logger=serverapp.event_logger,
    )
    serverapp.event_logger.register_event_schema(ACCESS_REVOKED_SCHEMA)
    authorizer = SocketRegisteringAuthorizer(
        parent=serverapp, identity_provider=identity_provider, inner=serverapp.authorizer, guest_access=guest_access
    )
    serverapp.authorizer = authorizer
    serverapp.web_app.settings["authorizer"] = authorizer
    serverapp.web_app.settings[GUEST_ACCESS_SETTING] = guest_access
    guest_access.start()
    return guest_access
