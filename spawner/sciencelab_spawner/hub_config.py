"""How a JupyterHub is configured for ScienceLab: the spawner, its profiles, the hub service and
the roles they need. `make_*` are pure; `configure_sciencelab` applies them to a hub's config.

In `jupyterhub_config.py`::

    from sciencelab_spawner.hub_config import configure_sciencelab
    configure_sciencelab(c, profiles_file="/etc/sciencelab/profiles.yaml")
"""

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from traitlets.config import Config

from .profile_config import ProfileConfigError, load_profiles_yaml, make_profile_config
from .profile_spawner import RefusalTracebackFilter
from .service import (
    GPU_INVENTORY_ENV,
    KUBE_NAMESPACE_ENV,
    PROFILES_FILE_ENV,
    PROFILES_JSON_ENV,
    SESSION_CHECK_INTERVAL_ENV,
    SESSIONS_FILE_ENV,
)
from .session_pages import TEMPLATES_DIR, make_session_template_vars
from .share_pages import shared_servers_of
from .share_watch import ACCESS_KEY_ENV, access_key_for, install_share_watch

SERVICE_NAME = "sciencelab"
SERVICE_ROLE = "sciencelab-service"
# What the service's own token may do: read users' groups and activity, list active servers with
# their saved spawner state (where the spawners record the GPUs each server holds and its session
# terms), and stop servers whose session is over.
SERVICE_SCOPES = [
    "list:users",
    "read:users:groups",
    "read:users:activity",
    "read:servers",
    "admin:server_state",
    "delete:servers",
]
# Where a server's extension finds the service (its session's deadline), in the server's environment.
SERVICE_URL_ENV = "SCIENCELAB_SERVICE_URL"
# JupyterHub's own `server` role: what a server's `JUPYTERHUB_API_TOKEN` may do unless
# `Spawner.server_token_scopes` says otherwise.
SERVER_ROLE_SCOPES = ["users:activity!user", "access:servers!server"]
# Sharing (JupyterHub's sharing API): users name whom they share with, and those allowed to share
# manage their servers' shares; a server's token manages that server's own (the lab's Share
# dialog) and lists and leaves what is shared with its user (the lab's panel). JupyterHub gives a
# server's token only those of its scopes its user's roles hold.
NAME_LOOKUP_SCOPES = ["read:users:name", "read:groups:name"]
SHARING_SCOPE = "shares!user"
SERVER_SHARE_SCOPES = ["shares!server", "users:shares!user", *NAME_LOOKUP_SCOPES]
SHARING_ROLE = "sciencelab-sharing"
# spawner kind -> (JupyterHub entry point, traitlets class name, GPU inventory the service reads)
SPAWNERS = {
    "local": ("sciencelab-local", "LocalProfileSpawner", "local"),
    "kubernetes": ("sciencelab-kube", "KubeProfileSpawner", "kubernetes"),
}
# How a Kubernetes client finds the API server (kubeconfig, or in-cluster): JupyterHub starts
# services with few of its own variables, so these are handed over explicitly.
KUBE_CLIENT_ENV = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


def make_service(
    port: int,
    *,
    host: str = "127.0.0.1",
    profiles_file: str | None = None,
    profiles: object = None,
    gpu_inventory: str = "local",
    python: str = sys.executable,
    environment: dict[str, str] | None = None,
    sessions_file: str = "sciencelab-sessions.json",
    session_check_interval: float = 10.0,
) -> dict:
    """The hub-managed `sciencelab` service on `host`:`port`, reading the spawner's profiles and
    keeping session deadlines in `sessions_file`, checked every `session_check_interval` seconds;
    `environment` is added to the service's (the Kubernetes client's settings)."""
    environment = {
        **(environment or {}),
        GPU_INVENTORY_ENV: gpu_inventory,
        SESSIONS_FILE_ENV: sessions_file,
        SESSION_CHECK_INTERVAL_ENV: str(session_check_interval),
    }
    if profiles_file:
        environment[PROFILES_FILE_ENV] = profiles_file
    else:
        environment[PROFILES_JSON_ENV] = json.dumps(profiles)
    return {
        "name": SERVICE_NAME,
        "url": f"http://{host}:{port}",
        "command": [python, "-m", "sciencelab_spawner.service"],
        "environment": environment,
        "oauth_no_confirm": True,
        "display": False,
    }


def service_access(services: Sequence[str]) -> list[str]:
    """The scopes that let a token reach each of the hub services `services`."""
    return [f"access:services!service={name}" for name in services]


def make_roles(
    existing: list[dict], server_services: Sequence[str] = (), sharing_groups: Sequence[str] | None = None
) -> list[dict]:
    """`existing` roles plus the service's, and users' access to the service and to
    `server_services` (added to the `user` role, which keeps whatever the admin gave it).

    Users may look up user and group names (to share with them); `sharing_groups` may share their
    servers (None: every user, through the `user` role)."""
    roles = [dict(role) for role in existing if role.get("name") != SERVICE_ROLE]
    roles.append(
        {
            "name": SERVICE_ROLE,
            "description": "What the ScienceLab hub service reads, and the servers it stops.",
            "scopes": SERVICE_SCOPES,
            "services": [SERVICE_NAME],
        }
    )
    user_role = next((role for role in roles if role.get("name") == "user"), None)
    if user_role is None:
        user_role = {"name": "user", "scopes": ["self"]}
        roles.append(user_role)
    scopes = list(user_role.get("scopes", ["self"]))
    added = [*service_access([SERVICE_NAME, *server_services]), *NAME_LOOKUP_SCOPES]
    if sharing_groups is None:
        added.append(SHARING_SCOPE)
    user_role["scopes"] = scopes + [scope for scope in added if scope not in scopes]
    roles = [role for role in roles if role.get("name") != SHARING_ROLE]
    if sharing_groups:
        roles.append(
            {
                "name": SHARING_ROLE,
                "description": "Who may share their servers (ScienceLab's sharing_groups).",
                "scopes": [SHARING_SCOPE],
                "groups": list(sharing_groups),
            }
        )
    return roles


def make_server_token_scopes(existing: Sequence[str] | None, server_services: Sequence[str]) -> list[str]:
    """The scopes of the servers' `JUPYTERHUB_API_TOKEN`: `existing` (the admin's
    `Spawner.server_token_scopes`; JupyterHub's `server` role when unset) plus access to
    `server_services`, and to its own shares. JupyterHub gives a token only those of these scopes
    its user holds: a server of a user who may not share cannot share."""
    scopes = list(existing or SERVER_ROLE_SCOPES)
    added = [*service_access(server_services), *SERVER_SHARE_SCOPES]
    return scopes + [scope for scope in added if scope not in scopes]


def check_profiles(profiles_file: str | None, profiles: object):
    """Stop here, naming file, profile and field, when the profiles are broken.

    Called while JupyterHub loads its configuration, so a broken file stops the hub before it
    starts anything (a failing managed service would stop it too, but leave the proxy running).
    """
    try:
        if profiles_file:
            load_profiles_yaml(Path(profiles_file).read_text(encoding="utf-8"), profiles_file)
        else:
            make_profile_config(profiles, "configure_sciencelab(profiles=...)")
    except OSError as error:
        raise SystemExit(f"Invalid ScienceLab profiles: {profiles_file}: cannot be read: {error.strerror}") from None
    except ProfileConfigError as error:
        raise SystemExit(f"Invalid ScienceLab profiles: {error}") from None


# None: the authenticator the admin configured (the demo's own users, say).
LOGINS = (None, "oidc")
OIDC_AUTHENTICATOR = "sciencelab_spawner.oidc_login.SciencelabOIDCAuthenticator"


def make_oidc_login(
    issuer: str | None,
    client_id: str | None,
    client_secret_file: str | None,
    groups_claim: str | None = None,
    allowed_groups: Sequence[str] = (),
    admin_groups: Sequence[str] = (),
) -> dict:
    """The settings of `SciencelabOIDCAuthenticator` for `configure_sciencelab(login="oidc", ...)`.
    The client secret is a file (or OAUTH_CLIENT_SECRET in the hub's environment), never a literal."""
    missing = [name for name, value in (("issuer", issuer), ("client_id", client_id)) if not value]
    if missing:
        raise ValueError(f"configure_sciencelab: login='oidc' needs {' and '.join(missing)}")
    settings = {"issuer": issuer, "client_id": client_id}
    if client_secret_file:
        settings["client_secret_file"] = client_secret_file
    if groups_claim:
        settings["groups_claim"] = groups_claim
    for name, groups in (("allowed_groups", allowed_groups), ("admin_groups", admin_groups)):
        if isinstance(groups, str):
            raise ValueError(f"configure_sciencelab: {name} must be a list of group names, got the string {groups!r}")
        if groups:
            settings[name] = set(groups)
    return settings


def configure_sciencelab(
    c: Config,
    *,
    spawner: str = "local",
    profiles_file: str | None = None,
    profiles: object = None,
    service_port: int = 10101,
    service_host: str = "127.0.0.1",
    namespace: str | None = None,
    server_services: Sequence[str] = (),
    check: bool = True,
    login: str | None = None,
    issuer: str | None = None,
    client_id: str | None = None,
    client_secret_file: str | None = None,
    groups_claim: str | None = None,
    allowed_groups: Sequence[str] = (),
    admin_groups: Sequence[str] = (),
    sessions_file: str = "sciencelab-sessions.json",
    session_check_interval: float = 10.0,
    service_url: str | None = None,
    sharing_groups: Sequence[str] | None = None,
):
    """Configure hub `c` for ScienceLab: the spawner ("local" or "kubernetes") with its profiles (a
    file, or `profiles`), the `sciencelab` service on `service_host`:`service_port`, and its roles. Services and
    roles the admin declared before the call are kept. With `check`, broken profiles stop the hub
    right here.

    `service_host` is the address the service listens on and the proxy sends its requests to: the
    default, 127.0.0.1, where the proxy runs beside the hub; the hub pod's IP where the proxy is a
    pod of its own (the Helm chart).

    `namespace` is the Kubernetes namespace of the servers (default: KubeSpawner's, the hub pod's
    own namespace); the service watches the same one for its GPU inventory.

    `server_services` names other hub services that users' servers call with their own token, such
    as a dask-gateway with JupyterHub authentication (`["dask-gateway"]`): users, and the
    `JUPYTERHUB_API_TOKEN` of their servers (`Spawner.server_token_scopes`), get
    `access:services!service=<name>` for each.

    `login="oidc"` logs users in through the OpenID Connect provider at `issuer`
    (`oidc_login.SciencelabOIDCAuthenticator`, docs/admin-login.md) as the OAuth client `client_id`
    with the secret in `client_secret_file`; the groups in the claim `groups_claim` (default
    "groups"; "wlcg.groups" for INDIGO-IAM's paths) become hub groups, `allowed_groups` may log in,
    `admin_groups` are admins. The hub needs JUPYTERHUB_CRYPT_KEY: the tokens are kept encrypted.
    Without `login`, the authenticator is left as configured.

    Session lifetimes (each profile's `lifetime`, `idle_timeout` and `extend`): the service checks
    every server each `session_check_interval` seconds, keeps deadlines in `sessions_file` (made
    absolute here: the hub's pages read it too) and servers reach it at `service_url` (default
    `http://<service_host>:<service_port>`; the chart gives the hub Service's address).

    Sharing: members of `sharing_groups` may share their collaborative servers with other users
    and groups (None, the default: every user; [] nobody); every user may look up user and group
    names. docs/sharing.md says what guests get.
    """
    if check:
        check_profiles(profiles_file, profiles)
    if login not in LOGINS:
        raise ValueError(f"configure_sciencelab: login {login!r} is not one of: {', '.join(map(repr, LOGINS))}")
    if login == "oidc":
        c.JupyterHub.authenticator_class = OIDC_AUTHENTICATOR
        c.SciencelabOIDCAuthenticator.update(
            make_oidc_login(issuer, client_id, client_secret_file, groups_claim, allowed_groups, admin_groups)
        )
    if spawner not in SPAWNERS:
        raise ValueError(f"configure_sciencelab: spawner {spawner!r} is not one of: {', '.join(SPAWNERS)}")
    if isinstance(server_services, str):
        raise ValueError(
            f"configure_sciencelab: server_services must be a list of service names, "
            f"got the string {server_services!r}; write [{server_services!r}]"
        )
    entry_point, class_name, gpu_inventory = SPAWNERS[spawner]
    c.JupyterHub.spawner_class = entry_point
    # The spawners add it too, but JupyterHub's REST API refuses bodies before it makes any spawner.
    RefusalTracebackFilter.install(logging.getLogger("JupyterHub"))
    service_environment = {}
    if spawner == "kubernetes":
        service_environment = {name: os.environ[name] for name in KUBE_CLIENT_ENV if name in os.environ}
        if namespace is not None:
            c[class_name].namespace = namespace
            service_environment[KUBE_NAMESPACE_ENV] = namespace
    if profiles_file:
        c[class_name].profiles_file = profiles_file
    elif profiles is not None:
        c[class_name].profiles = profiles
    else:
        raise ValueError("configure_sciencelab: give profiles_file or profiles")
    services = [
        s for s in (c.JupyterHub.services if "services" in c.JupyterHub else []) if s.get("name") != SERVICE_NAME
    ]
    sessions_file = os.path.abspath(sessions_file)
    services.append(
        make_service(
            service_port,
            host=service_host,
            profiles_file=profiles_file,
            profiles=profiles,
            gpu_inventory=gpu_inventory,
            environment=service_environment,
            sessions_file=sessions_file,
            session_check_interval=session_check_interval,
        )
    )
    c.JupyterHub.services = services
    if isinstance(sharing_groups, str):
        raise ValueError(
            f"configure_sciencelab: sharing_groups must be a list of group names, "
            f"got the string {sharing_groups!r}; write [{sharing_groups!r}]"
        )
    c.JupyterHub.load_roles = make_roles(
        c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else [], server_services, sharing_groups
    )
    # Servers ask the service for their own session's deadline, with their own token.
    called = [SERVICE_NAME, *server_services]
    existing = c.Spawner.server_token_scopes if "server_token_scopes" in c.Spawner else None
    if callable(existing):
        raise ValueError(
            "configure_sciencelab: Spawner.server_token_scopes is a function; add "
            f"{', '.join(service_access(called))} to what it returns"
        )
    c.Spawner.server_token_scopes = make_server_token_scopes(existing, called)
    spawner_config = c[class_name]
    environment = dict(spawner_config.environment) if "environment" in spawner_config else {}
    environment[SERVICE_URL_ENV] = service_url or f"http://{service_host}:{service_port}"
    # A revoked guest loses a shared server within seconds: the hub tells the server, signed with
    # this key (share_watch.py).
    environment[ACCESS_KEY_ENV] = access_key_for
    spawner_config.environment = environment
    install_share_watch()
    # The hub's home, "not running" and admin pages show deadlines and why a server was stopped.
    paths = list(c.JupyterHub.template_paths) if "template_paths" in c.JupyterHub else []
    c.JupyterHub.template_paths = [TEMPLATES_DIR, *(path for path in paths if path != TEMPLATES_DIR)]
    template_vars = dict(c.JupyterHub.template_vars) if "template_vars" in c.JupyterHub else {}
    template_vars["sciencelab_sessions"] = make_session_template_vars(sessions_file)
    # ... and the home page the servers others shared with the user.
    template_vars["sciencelab_shared"] = shared_servers_of
    c.JupyterHub.template_vars = template_vars
