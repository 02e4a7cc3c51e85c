"""The `sciencelab` hub service: `GET /services/sciencelab/api/profiles` for scripts, and the
start-up check of the profiles.

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
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.ioloop import IOLoop

from .brief_cache import BriefCache
from .gpu_placement import gpu_placement_problem
from .gpu_quota import user_gpu_limit
from .kube_inventory import gpu_status, shared_gpu_inventory
from .local_gpus import LocalGpuInventory, local_gpu_status
from .profile_config import ProfileConfig, ProfileConfigError, make_profile_config, profiles_schema
from .profile_source import profile_file
from .profile_spawner import STATE_KEY
from .user_options import (
    default_profile,
    fixed_options,
    make_options_schema,
    make_user_options_schema,
    visible_profiles,
)

# How the hub tells the service where its profiles are (set by `hub_config.make_service`).
PROFILES_FILE_ENV = "SCIENCELAB_PROFILES_FILE"
PROFILES_JSON_ENV = "SCIENCELAB_PROFILES_JSON"
# "local": this machine's NVML; "kubernetes": the service's own watch of the cluster's nodes and
# pods; "none"
GPU_INVENTORY_ENV = "SCIENCELAB_GPU_INVENTORY"
KUBE_NAMESPACE_ENV = "SCIENCELAB_KUBE_NAMESPACE"  # the servers' namespace, with "kubernetes"
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
) -> dict:
    """What `GET /services/sciencelab/api/profiles` answers a member of `groups`."""
    profiles = visible_profiles(config, groups)
    unavailable = {profile.slug: gpu_placement_problem(config, profile, gpu_free, gpu_problem) for profile in profiles}
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

    async def claimed_gpu_devices(self) -> frozenset[str]:
        """The GPU devices every active server holds, at most `GPU_CLAIMS_MAX_AGE` seconds old: the
        cost of a listing grows with the active users, that of a request that finds one does not."""
        return await self._claimed.current()

    async def _read_claimed_devices(self) -> frozenset[str]:
        claimed, offset = set(), 0
        while True:
            page = await self.get(f"users?state=active&limit={USERS_PAGE_SIZE}&offset={offset}")
            for user in page["items"]:
                claimed.update(device for state in server_claims(user) for device in state.get("gpu_devices", ()))
            following = page["_pagination"].get("next")
            if not following:
                return frozenset(claimed)
            offset = following["offset"]


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
        document = make_profiles_document(config, frozenset(user["groups"]), gpu_free, gpu_problem, held)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(document))


class ProfilesSchemaHandler(APIHandler):
    """The JSON Schema of a profile file, for admins' editors and tools."""

    @web.authenticated
    def get(self):
        self.set_header("Content-Type", "application/schema+json")
        self.finish(json.dumps(profiles_schema()))


def kube_namespace(environ: dict[str, str]) -> str:
    """The namespace the hub's servers run in: as configured, else KubeSpawner's default."""
    if environ.get(KUBE_NAMESPACE_ENV):
        return environ[KUBE_NAMESPACE_ENV]
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return "default"


def make_app(environ: dict[str, str]) -> web.Application:
    prefix = environ["JUPYTERHUB_SERVICE_PREFIX"]
    return web.Application(
        [
            (url_path_join(prefix, "api/profiles"), ProfilesHandler),
            (url_path_join(prefix, "api/profiles/schema"), ProfilesSchemaHandler),
            (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
        ],
        cookie_secret=os.urandom(32),
        profile_source=ProfileSource(environ),
        hub_client=HubClient(environ["JUPYTERHUB_API_URL"], environ["JUPYTERHUB_API_TOKEN"]),
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
