"""Sharing this server: `/sciencelab/api/shares` and `/sciencelab/api/share-codes` relay the lab's
Share dialog to JupyterHub's sharing API (`/hub/api/shares/...`, `/hub/api/share-codes/...`) with
the server's own token, which may manage this server's shares (`shares!server`).

Only the server's owner manages its shares, and only on a server whose profile is collaborative;
anything else is a 403 saying why. What the hub refuses (a user it does not know, a user whose
groups may not share) comes back with the hub's status and words. A share link is a JupyterHub
share code: the code alone, never a token, and it gives access only to a logged-in user who
accepts it.
"""

import json
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .info import read_profile_record
from .request_json import JsonAPIHandler, JsonInputError, shown

SHARES_SETTING = "sciencelab_shares"
# JupyterHub's bounds for a share code's lifetime, in seconds (1 minute to 1 year); default 1 day.
CODE_LIFETIME = (60, 365 * 24 * 3600)
DEFAULT_CODE_LIFETIME = 24 * 3600
MAX_NAME_LENGTH = 255


class ShareRequestError(ValueError):
    """A request the relay refuses itself: `status` and a message naming the field."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def sharing_refusal(collaborative: bool | None, caller: str, owner: str) -> str | None:
    """Why `caller` may not manage the shares of `owner`'s server; None when they may."""
    if caller != owner:
        return f"sharing: only {owner}, who owns this server, manages its shares"
    if collaborative is None:
        return "sharing: this server was not started from a ScienceLab profile, so it cannot be shared"
    if not collaborative:
        return (
            "sharing: this server's profile runs without real-time collaboration; "
            "start a collaborative profile (or switch collaboration on) to share it"
        )
    return None


def read_grantee(body: object) -> dict[str, str]:
    """`{"user": name}` or `{"group": name}` from a request body, as the hub takes it."""
    if not isinstance(body, dict) or len(body) != 1 or next(iter(body)) not in ("user", "group"):
        raise ShareRequestError(400, f'body: {shown(body)} is not {{"user": name}} or {{"group": name}}')
    ((kind, name),) = body.items()
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ShareRequestError(400, f"{kind}: {shown(name)} is not a {kind} name (1 to {MAX_NAME_LENGTH} characters)")
    return {kind: name}


def read_code_lifetime(body: object) -> int:
    """The seconds a new share code is valid, from `{"expires_in": seconds}` (or nothing: a day)."""
    if body in (None, {}):
        return DEFAULT_CODE_LIFETIME
    low, high = CODE_LIFETIME
    if not isinstance(body, dict) or set(body) != {"expires_in"}:
        raise ShareRequestError(400, f'body: {shown(body)} is not {{"expires_in": seconds}}')
    seconds = body["expires_in"]
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
        raise ShareRequestError(
            400, f"expires_in: {shown(seconds)} is not a whole number of seconds from {low} to {high}"
        )
    return seconds


def make_share_document(hub_share: Mapping) -> dict:
    """One share as the dialog lists it."""
    kind = hub_share["kind"]
    return {"kind": kind, "name": hub_share[kind]["name"], "created_at": hub_share["created_at"]}


def make_code_document(hub_code: Mapping) -> dict:
    """One share code as the dialog lists it; `accept_url` only when it was just made (the hub
    shows a code once)."""
    document = {
        "id": hub_code["id"],
        "created_at": hub_code["created_at"],
        "expires_at": hub_code["expires_at"],
        "exchange_count": hub_code["exchange_count"],
    }
    if hub_code.get("accept_url"):
        document["accept_url"] = hub_code["accept_url"]
    return document


def make_shared_server_document(hub_shared: Mapping) -> dict:
    """One server shared with this server's owner, as the panel lists it."""
    server = hub_shared["server"]
    return {
        "owner": server["user"]["name"],
        "name": server["name"],
        "url": server["url"],
        "ready": server["ready"],
        "through": hub_shared["group"]["name"] if hub_shared.get("group") else None,
    }


class ShareRelay:
    """This server's requests to the hub's sharing API, with its own token."""

    def __init__(self, environ: Mapping[str, str]):
        self.owner = environ.get("JUPYTERHUB_USER", "")
        record = read_profile_record(environ)
        self.collaborative: bool | None = bool(record.get("collaborative")) if record else None
        api = self.api = environ.get("JUPYTERHUB_API_URL", "").rstrip("/")
        server = f"{quote(self.owner, safe='')}/{quote(environ.get('JUPYTERHUB_SERVER_NAME', ''), safe='')}"
        self.shares_url = f"{api}/shares/{server}"
        self.codes_url = f"{api}/share-codes/{server}"
        self.token = environ.get("JUPYTERHUB_API_TOKEN", "")
        self.http = AsyncHTTPClient()

    async def call(self, method: str, url: str, body: object = None) -> tuple[int, object]:
        """(status, document) of the hub's answer; a refusal's document is `{"message": ...}`."""
        request = HTTPRequest(
            url,
            method=method,
            body=None if body is None else json.dumps(body),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            request_timeout=20,
            allow_nonstandard_methods=True,
        )
        try:
            response = await self.http.fetch(request)
        except HTTPClientError as error:
            message = _hub_message(error.response.body if error.response else b"") or f"HTTP {error.code}"
            if error.code < 500:
                return error.code, {"message": f"The hub refused: {message}"}
            return 502, {"message": f"The hub failed: {message}"}
        except OSError as error:
            return 503, {"message": f"The hub cannot be reached: {error}"}
        return response.code, json.loads(response.body) if response.body else None

    async def shared_with_owner(self) -> tuple[int, object]:
        """The servers of others this server's owner may use (shared with them or their groups)."""
        status, document = await self.call("GET", f"{self.api}/users/{quote(self.owner, safe='')}/shared")
        if status != 200:
            return status, document
        return 200, {"servers": [make_shared_server_document(item) for item in document["items"]]}

    async def listing(self) -> tuple[int, dict]:
        status, shares = await self.call("GET", self.shares_url)
        if status != 200:
            return status, shares
        status, codes = await self.call("GET", self.codes_url)
        if status != 200:
            return status, codes
        return 200, {
            "collaborative": self.collaborative,
            "shares": [make_share_document(share) for share in shares["items"]],
            "codes": [make_code_document(code) for code in codes["items"]],
        }


def _hub_message(body: bytes) -> str | None:
    try:
        return json.loads(body).get("message")
    except (ValueError, AttributeError):
        return None


class SharingHandler(ExtensionHandlerMixin, JsonAPIHandler):
    """Common to both routes: the owner-and-collaborative check, and refusals."""

    @property
    def relay(self) -> ShareRelay:
        return self.settings[SHARES_SETTING]

    def refused(self) -> bool:
        """Answer 403 and return True when the caller may not manage this server's shares."""
        reason = sharing_refusal(self.relay.collaborative, self.current_user.username, self.relay.owner)
        if reason is not None:
            self.refuse(403, reason)
        return reason is not None

    def checked_body(self, read):
        """`read(body)` of the request's JSON body, or None once a refusal was answered (a body
        that is no JSON, a caller who may not share, a value `read` refuses)."""
        try:
            body = self.json_body()
        except JsonInputError as error:
            return self.refuse(400, str(error))
        if self.refused():
            return None
        try:
            return read(body)
        except ShareRequestError as error:
            return self.refuse(error.status, str(error))

    def answer(self, status: int, document: object):
        self.set_status(status)
        if document is None:
            self.finish()
        else:
            self.finish(json.dumps(document))


class SharesHandler(SharingHandler):
    """`GET /sciencelab/api/shares`: who has access (users, groups) and the open share codes;
    `POST {"user": name}` or `{"group": name}`: share; `DELETE ?user=name`, `?group=name` or
    nothing: revoke one, or every share of this server."""

    @web.authenticated
    async def get(self):
        if not self.refused():
            self.answer(*await self.relay.listing())

    @web.authenticated
    async def post(self):
        grantee = self.checked_body(read_grantee)
        if grantee is None:
            return
        status, share = await self.relay.call("POST", self.relay.shares_url, grantee)
        self.answer(201 if status == 200 else status, make_share_document(share) if status == 200 else share)

    @web.authenticated
    async def delete(self):
        if self.refused():
            return
        users, groups = self.get_query_arguments("user"), self.get_query_arguments("group")
        if not users and not groups:
            status, document = await self.relay.call("DELETE", self.relay.shares_url)
            return self.answer(204 if status == 204 else status, None if status == 204 else document)
        if len(users) + len(groups) != 1:
            return self.refuse(400, "query: name one user (?user=name) or one group (?group=name), or none for all")
        try:
            grantee = read_grantee({"user": users[0]} if users else {"group": groups[0]})
        except ShareRequestError as error:
            return self.refuse(error.status, str(error))
        # A PATCH without scopes removes every scope of the share, which deletes it.
        status, document = await self.relay.call("PATCH", self.relay.shares_url, grantee)
        self.answer(204 if status == 200 else status, None if status == 200 else document)


class ShareCodesHandler(SharingHandler):
    """`POST /sciencelab/api/share-codes` (`{"expires_in": seconds}` or nothing): a new share
    link, whose `accept_url` is shown once; `DELETE ?id=<id>` or nothing: revoke one, or all."""

    @web.authenticated
    async def post(self):
        seconds = self.checked_body(read_code_lifetime)
        if seconds is None:
            return
        status, code = await self.relay.call("POST", self.relay.codes_url, {"expires_in": seconds})
        self.answer(201 if status == 200 else status, make_code_document(code) if status == 200 else code)

    @web.authenticated
    async def delete(self):
        if self.refused():
            return
        ids = self.get_query_arguments("id")
        if len(ids) > 1 or (ids and not ids[0].startswith("sc_")):
            return self.refuse(400, f"id: {shown(ids)} is not one share code id (sc_<number>)")
        url = f"{self.relay.codes_url}?{urlencode({'id': ids[0]})}" if ids else self.relay.codes_url
        status, document = await self.relay.call("DELETE", url)
        self.answer(204 if status == 204 else status, None if status == 204 else document)


class SharedWithMeHandler(SharingHandler):
    """`GET /sciencelab/api/shared-with-me`: the servers of others this server's owner may use;
    `DELETE ?owner=name&server=name`: leave one (a share made to one of the owner's groups stays:
    the group's owner revokes it)."""

    @web.authenticated
    async def get(self):
        if self.current_user.username != self.relay.owner:
            return self.refuse(403, f"shared-with-me: only {self.relay.owner} sees what is shared with them")
        self.answer(*await self.relay.shared_with_owner())

    @web.authenticated
    async def delete(self):
        if self.current_user.username != self.relay.owner:
            return self.refuse(403, f"shared-with-me: only {self.relay.owner} leaves their shares")
        owners, servers = self.get_query_arguments("owner"), self.get_query_arguments("server")
        if len(owners) != 1 or len(servers) != 1 or not owners[0]:
            return self.refuse(400, "query: name one server as ?owner=name&server=name (server= for the default one)")
        me = quote(self.relay.owner, safe="")
        url = f"{self.relay.api}/users/{me}/shared/{quote(owners[0], safe='')}/{quote(servers[0], safe='')}"
        status, document = await self.relay.call("DELETE", url)
        self.answer(204 if status == 204 else status, None if status == 204 else document)


def make_handlers() -> list[tuple[str, type]]:
    return [
        (r"/sciencelab/api/shares", SharesHandler),
        (r"/sciencelab/api/share-codes", ShareCodesHandler),
        (r"/sciencelab/api/shared-with-me", SharedWithMeHandler),
    ]
