"""The `sciencelab` hub service: `GET /services/sciencelab/api/profiles` for scripts, the
start-up check of the profiles, and session lifetimes: each server's deadline at
`/services/sciencelab/api/users/{user}/server[s/{name}]/deadline` (GET; POST `{}` extends), the
admins' `/services/sciencelab/sessions` page, and the `SessionKeeper` that stops servers whose time
is up.

JupyterHub starts it (see `hub_config.make_service`) and stops at start-up when it exits, so a
broken profile source stops the hub with the file, profile and field named. It reads the same
profile source as the spawners, re-reads a changed file, and answers each user with the profiles
their groups allow, each with its option schema and the current GPU availability.
"""

import json
import logging
import os
import sys
from http.client import responses
from pathlib import Path
from urllib.parse import quote, urlparse

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from kubespawner.clients import load_config
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop

from .brief_cache import BriefCache
from .gpu_placement import gpu_placement_problem
from .gpu_quota import user_gpu_limit
from .kube_inventory import gpu_status, shared_gpu_inventory
from .local_gpus import LocalGpuInventory, local_gpu_status
from .profile_config import ProfileConfig, ProfileConfigError, make_profile_config, profiles_schema
from .profile_source import profile_file
from .profile_spawner import STATE_KEY
from .session_keeper import SessionKeeper, SessionStore, now_utc
from .session_pages import make_sessions_page
from .session_terms import ExtendRefused, Session, make_deadline_document
from .user_options import (
    cut,
    default_profile,
    fixed_options,
    make_options_schema,
    make_user_options_schema,
    shown,
    visible_profiles,
)

# How the hub tells the service where its profiles are (set by `hub_config.make_service`).
PROFILES_FILE_ENV = "SCIENCELAB_PROFILES_FILE"
PROFILES_JSON_ENV = "SCIENCELAB_PROFILES_JSON"
# "local": this machine's NVML; "kubernetes": the service's own watch of the cluster's nodes and
# pods; "none"
GPU_INVENTORY_ENV = "SCIENCELAB_GPU_INVENTORY"
KUBE_NAMESPACE_ENV = "SCIENCELAB_KUBE_NAMESPACE"  # the servers' namespace, with "kubernetes"
# Session lifetimes: the file the service keeps deadlines in (the hub's pages read it too), and
# seconds between two checks of every server.
SESSIONS_FILE_ENV = "SCIENCELAB_SESSIONS_FILE"
SESSION_CHECK_INTERVAL_ENV = "SCIENCELAB_SESSION_CHECK_INTERVAL"
DEFAULT_SESSION_CHECK_INTERVAL = 10.0
# Where a pod finds its own namespace; KubeSpawner's default namespace, when none is configured.
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# Seconds the GPU claims of every active server are reused. Listing them costs a hub request per
# page of active users; the answer is advice (each spawn checks again), so it may lag a little.
GPU_CLAIMS_MAX_AGE = 2.0
# Users per page of the hub's user list: JupyterHub's largest page by default (`api_page_max_limit`).
USERS_PAGE_SIZE = 200

log = logging.getLogger("sciencelab.service")


def make_profiles_document(
    config: ProfileConfig,
    groups: frozenset[str],
    gpu_free: dict[str, tuple[int, int]],
    gpu_problem: str | None,
    gpus_held: int,
    hub_kind: str | None = None,
) -> dict:
    """What `GET /services/sciencelab/api/profiles` answers a member of `groups`; `hub_kind` is
    where the hub's spawner starts servers, whose GPUs `gpu_free` counts."""
    profiles = visible_profiles(config, groups)
    unavailable = {
        profile.slug: gpu_placement_problem(config, profile, gpu_free, gpu_problem, hub_kind) for profile in profiles
    }
    default = default_profile(tuple(profile for profile in profiles if unavailable[profile.slug] is None))
    documents = []
    for profile in profiles:
        models = [choice.value for choice in profile.gpu_model.choices] if profile.gpu_model else []
        documents.append(
            {
                "slug": profile.slug,
                "display_name": profile.display_name,
                "description": profile.description,
                "default": profile is default,
                # Why this hub can never start it (no GPU of its model); null when it can.
                "unavailable": unavailable[profile.slug],
                "fixed": fixed_options(profile),
                "options_schema": make_options_schema(config, profile, groups),
                "gpu_availability": {
                    name: {"free": gpu_free[name][0], "total": gpu_free[name][1]} for name in models if name in gpu_free
                },
            }
        )
    return {
        "profiles": documents,
        "user_options_schema": make_user_options_schema(config, groups),
        "gpu_problem": gpu_problem,
        "gpu_quota": {"max_gpus": user_gpu_limit(config.quotas, groups), "held": gpus_held},
    }


class ProfileSource:
    """The profiles as the hub configured them: a file (re-read on change) or a fixed JSON list."""

    def __init__(self, environ: dict[str, str]):
        self.path = environ.get(PROFILES_FILE_ENV)
        self._fixed = None
        if not self.path:
            try:
                data = json.loads(environ.get(PROFILES_JSON_ENV) or "null")
            except json.JSONDecodeError as error:
                raise ProfileConfigError(f"${PROFILES_JSON_ENV}: not JSON: {error}") from None
            self._fixed = make_profile_config(data, "the spawner's profiles setting")

    def current(self) -> ProfileConfig:
        return profile_file(self.path, log).current() if self.path else self._fixed


def server_claims(user: dict) -> list[dict]:
    """The ScienceLab state (GPU claims) of each server in a hub API user model that has one."""
    return [
        state
        for server in (user.get("servers") or {}).values()
        if (state := (server.get("state") or {}).get(STATE_KEY))
    ]


class HubClient:
    """The few hub REST calls the service makes, with its own token."""

    def __init__(self, api_url: str, token: str):
        self.api_url = api_url
        self.token = token
        self.http = AsyncHTTPClient()
        self._claimed = BriefCache(self._read_claimed_devices, GPU_CLAIMS_MAX_AGE, frozenset())

    async def get(self, path: str) -> dict | list:
        request = HTTPRequest(
            url_path_join(self.api_url, path),
            headers={
                "Authorization": f"token {self.token}",
                "Accept": "application/jupyterhub-pagination+json",
            },
            request_timeout=20,
        )
        response = await self.http.fetch(request)
        return json.loads(response.body)

    async def user(self, name: str) -> dict:
        """The hub's model of user `name`: groups, and active servers with their state."""
        return await self.get(f"users/{quote(name, safe='')}")

    async def active_users(self) -> list[dict]:
        """Every user with an active server, with their groups and servers (state included), a
        request per `USERS_PAGE_SIZE` users."""
        users, offset = [], 0
        while True:
            page = await self.get(f"users?state=active&limit={USERS_PAGE_SIZE}&offset={offset}")
            users.extend(page["items"])
            following = page["_pagination"].get("next")
            if not following:
                return users
            offset = following["offset"]

    async def stop_server(self, user: str, server: str):
        """Ask the hub to stop a server ("" for the default one); it answers before the stop ends."""
        path = f"users/{quote(user, safe='')}/" + (f"servers/{quote(server, safe='')}" if server else "server")
        request = HTTPRequest(
            url_path_join(self.api_url, path),
            method="DELETE",
            headers={"Authorization": f"token {self.token}"},
            request_timeout=20,
        )
        await self.http.fetch(request)

    async def claimed_gpu_devices(self) -> frozenset[str]:
        """The GPU devices every active server holds, at most `GPU_CLAIMS_MAX_AGE` seconds old: the
        cost of a listing grows with the active users, that of a request that finds one does not."""
        return await self._claimed.current()

    async def _read_claimed_devices(self) -> frozenset[str]:
        return frozenset(
            device
            for user in await self.active_users()
            for state in server_claims(user)
            for device in state.get("gpu_devices", ())
        )


class APIHandler(HubOAuthenticated, web.RequestHandler):
    """Answers JSON, errors included, as JupyterHub's own API does."""

    def write_error(self, status_code, **kwargs):
        exception = kwargs.get("exc_info", (None, None))[1]
        # An HTTPError's message, else its reason, else the status's phrase (as tornado's own page).
        message = (
            getattr(exception, "log_message", None)
            or getattr(exception, "reason", None)
            or responses.get(status_code, "Unknown")
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))


class ProfilesHandler(APIHandler):
    @web.authenticated
    async def get(self):
        source: ProfileSource = self.settings["profile_source"]
        hub: HubClient = self.settings["hub_client"]
        name = self.current_user["name"]
        config = source.current()
        user = await hub.user(name)
        gpu_free, gpu_problem = {}, None
        if any(profile.gpu_model for profile in config.profiles):
            if self.settings["gpu_inventory"] == "local":
                inventory = await self.settings["local_gpu_inventory"].current()
                gpu_free, gpu_problem = local_gpu_status(config, inventory, await hub.claimed_gpu_devices())
            elif self.settings["gpu_inventory"] == "kubernetes":
                inventory = shared_gpu_inventory(self.settings["kube_namespace"])
                await inventory.ready()
                gpu_free, gpu_problem = gpu_status(config, inventory)
        held = sum(state.get("gpu_count", 0) for state in server_claims(user))
        document = make_profiles_document(
            config, frozenset(user["groups"]), gpu_free, gpu_problem, held, self.settings["gpu_inventory"]
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))


class ProfilesSchemaHandler(APIHandler):
    """The JSON Schema of a profile file, for admins' editors and tools."""

    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "application/schema+json")
        self.finish(json.dumps(profiles_schema()))


class SessionRefusal(Exception):
    """A session request refused on purpose: answered with `status` and `message`, as JSON."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class SessionHandler(APIHandler):
    """A server's session, at the hub's paths under the service; its owner and admins only.

    Refusals are written, not raised as `HTTPError`: tornado %-formats an error's message, and a
    user name may hold a '%'.
    """

    async def find_session(self, user_name: str, server_name: str, *, admin_only: bool = False) -> Session:
        requester = self.current_user
        label = cut(f"{user_name}:{server_name}" if server_name else user_name)
        if admin_only and not requester.get("admin"):
            raise SessionRefusal(403, f"only admins stop servers here; {requester['name']} is not one")
        if requester["name"] != user_name and not requester.get("admin"):
            raise SessionRefusal(
                403, f"{requester['name']} may not see or change {label}'s session: only its owner and admins may"
            )
        try:
            user = await self.settings["hub_client"].user(user_name)
        except HTTPClientError as error:
            if error.code == 404:
                raise SessionRefusal(404, f"no user {shown(user_name)}") from None
            raise
        server = (user.get("servers") or {}).get(server_name)
        if server is None:
            raise SessionRefusal(404, f"{label}'s server is not running")
        session = self.settings["session_keeper"].session_of(user, server_name, server)
        if session is None:
            raise SessionRefusal(
                409, f"{label}'s server has no session yet: it is starting or stopping, or predates lifetimes"
            )
        return session

    def answer(self, document: dict, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))


class DeadlineHandler(SessionHandler):
    """`GET .../deadline`: the deadline document; `POST .../deadline` with `{}`: Extend once."""

    @web.authenticated
    async def get(self, user_name: str, server_name: str = ""):
        try:
            session = await self.find_session(user_name, server_name)
        except SessionRefusal as refusal:
            return self.answer({"status": refusal.status, "message": refusal.message}, refusal.status)
        self.answer(make_deadline_document(session, now_utc()))

    @web.authenticated
    async def post(self, user_name: str, server_name: str = ""):
        body = self.request.body.strip() or b"{}"
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        try:
            if request != {}:
                raise SessionRefusal(
                    400, f"body: {shown(body.decode(errors='replace'))} is not allowed; send {{}} to extend"
                )
            session = await self.find_session(user_name, server_name)
            try:
                extended = self.settings["session_keeper"].extend(session)
            except ExtendRefused as error:
                raise SessionRefusal(error.status_code, str(error)) from None
        except SessionRefusal as refusal:
            return self.answer({"status": refusal.status, "message": refusal.message}, refusal.status)
        self.answer(make_deadline_document(extended, now_utc()))


class ServerStopHandler(SessionHandler):
    """`DELETE .../server`: an admin stops a server, and its user is told who did."""

    @web.authenticated
    async def delete(self, user_name: str, server_name: str = ""):
        try:
            session = await self.find_session(user_name, server_name, admin_only=True)
        except SessionRefusal as refusal:
            return self.answer({"status": refusal.status, "message": refusal.message}, refusal.status)
        await self.settings["session_keeper"].stop(session, "", by=self.current_user["name"])
        self.answer({"stopping": session.label}, 202)


class SessionsPageHandler(HubOAuthenticated, web.RequestHandler):
    """`/services/sciencelab/sessions`: every running server's deadline and idle time, for admins,
    with Extend and Stop."""

    @web.authenticated
    async def get(self):
        if not self.current_user.get("admin"):
            raise web.HTTPError(403, "only admins see everyone's sessions")
        keeper: SessionKeeper = self.settings["session_keeper"]
        rows = [
            (keeper.session_of(user, name, server), server)
            for user in await self.settings["hub_client"].active_users()
            for name, server in (user.get("servers") or {}).items()
        ]
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/sciencelab/")
        hub_static = url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "hub/static/")
        self.finish(make_sessions_page(rows, now_utc(), prefix, self.xsrf_token.decode("ascii"), hub_static))


def kube_namespace(environ: dict[str, str]) -> str:
    """The namespace the hub's servers run in: as configured, else KubeSpawner's default."""
    if environ.get(KUBE_NAMESPACE_ENV):
        return environ[KUBE_NAMESPACE_ENV]
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"


def make_app(environ: dict[str, str]) -> web.Application:
    prefix = environ["JUPYTERHUB_SERVICE_PREFIX"]
    user = url_path_join(prefix, "api/users/([^/]+)")
    source = ProfileSource(environ)
    hub = HubClient(environ["JUPYTERHUB_API_URL"], environ["JUPYTERHUB_API_TOKEN"])
    store = SessionStore(Path(environ.get(SESSIONS_FILE_ENV) or "sciencelab-sessions.json"))
    keeper = SessionKeeper(
        hub,
        store,
        lambda: source.current().sessions.exempt_groups,
        float(environ.get(SESSION_CHECK_INTERVAL_ENV) or DEFAULT_SESSION_CHECK_INTERVAL),
        logging.getLogger("sciencelab.sessions"),
    )
    return web.Application(
        [
            (url_path_join(prefix, "api/profiles"), ProfilesHandler),
            (url_path_join(prefix, "api/profiles/schema"), ProfilesSchemaHandler),
            (f"{user}/server/deadline", DeadlineHandler),
            (f"{user}/servers/([^/]+)/deadline", DeadlineHandler),
            (f"{user}/server", ServerStopHandler),
            (f"{user}/servers/([^/]+)", ServerStopHandler),
            (url_path_join(prefix, "sessions"), SessionsPageHandler),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
        profile_source=source,
        hub_client=hub,
        session_keeper=keeper,
        gpu_inventory=environ.get(GPU_INVENTORY_ENV, "none"),
        local_gpu_inventory=LocalGpuInventory(),
        kube_namespace=kube_namespace(environ),
    )


def main():
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    try:
        app = make_app(dict(os.environ))
        app.settings["profile_source"].current()
    except ProfileConfigError as error:
        # JupyterHub stops at start-up when a managed service exits: that is the point.
        log.critical("Invalid ScienceLab profiles: %s", error)
        sys.exit(1)
    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app.listen(url.port, url.hostname)
    IOLoop.current().add_callback(app.settings["session_keeper"].run)
    if app.settings["gpu_inventory"] == "kubernetes":
        # The cluster's answers come from a watch started now, not from a call per request.
        load_config()
        IOLoop.current().add_callback(lambda: shared_gpu_inventory(app.settings["kube_namespace"]).ready())
    log.info(
        "ScienceLab service at %s%s", os.environ["JUPYTERHUB_SERVICE_URL"], os.environ["JUPYTERHUB_SERVICE_PREFIX"]
    )
    try:
        IOLoop.current().start()
    except KeyboardInterrupt:
        # Ctrl-C on the hub reaches its whole process group; the hub stops us too.
        log.info("ScienceLab service stopped")


if __name__ == "__main__":
    main()
