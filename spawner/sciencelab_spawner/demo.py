"""The demo hub: a real JupyterHub on loopback with ScienceLab's local profile spawner, its
`sciencelab` service, the groups and the profiles of `demo_profiles.yaml`.

`make_demo_config` is pure (plain values in, a traitlets `Config` out); `run_demo` does the I/O.
"""

import asyncio
import os
import secrets
import shutil
import signal
import socket
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from jupyterhub.app import JupyterHub
from traitlets.config import Config

from .hub_config import check_profiles, configure_sciencelab

DEMO_USERS = ("alice", "bob")
DEMO_ADMIN = "admin"

DEMO_GROUPS = {"gpu-users": {"users": ["alice"]}}
# Copied to <state dir>/profiles.yaml the first time, then the admin's to edit.
DEMO_PROFILES_FILE = files(__package__).joinpath("demo_profiles.yaml")

EXTRA_CONFIG_TEMPLATE = """\
# Extra JupyterHub configuration for the ScienceLab demo, loaded after the demo's own.
# The profiles live in profiles.yaml next to this file: edit it while the hub runs.
# For example, to put bob into the gpu-users group too:
#
# c.JupyterHub.load_groups = {"gpu-users": {"users": ["alice", "bob"]}}
"""

# JupyterHub's SharedPasswordAuthenticator refuses shorter passwords.
MIN_USER_PASSWORD = 8
MIN_ADMIN_PASSWORD = 32


@dataclass(frozen=True)
class DemoOidc:
    """The provider the demo's users log in at, and the hub's client there (docs/admin-login.md)."""

    issuer: str
    client_id: str
    client_secret_file: str
    groups_claim: str = "groups"


@dataclass(frozen=True)
class DemoSettings:
    """What one demo hub needs; every path absolute."""

    state_dir: Path
    port: int
    hub_port: int
    proxy_api_port: int
    service_port: int
    proxy_command: str
    user_password: str
    admin_password: str
    # `sciencelab demo --oidc-issuer`: users log in at this OpenID Connect provider instead.
    oidc: DemoOidc | None = None


def make_demo_config(settings: DemoSettings) -> Config:
    """The complete hub configuration of the demo."""
    state = settings.state_dir
    c = Config()
    c.JupyterHub.ip = "127.0.0.1"
    c.JupyterHub.port = settings.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port
    # Loaded after this configuration: where an admin tries their own profiles in the demo.
    c.JupyterHub.config_file = str(state / "jupyterhub_config.py")
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.command = [settings.proxy_command]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")

    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = settings.user_password
    c.SharedPasswordAuthenticator.admin_password = settings.admin_password
    c.Authenticator.allowed_users = set(DEMO_USERS)
    c.Authenticator.admin_users = {DEMO_ADMIN}

    c.JupyterHub.load_groups = DEMO_GROUPS
    c.JupyterHub.allow_named_servers = True

    # `run_demo` checks the profiles itself, once the file exists.
    login = {}
    if settings.oidc is not None:
        # The provider's groups claim decides groups (alice's gpu-users too); alice and bob may log in by
        # name, members of gpu-users by group.
        c.JupyterHub.load_groups = {}
        login = {
            "login": "oidc",
            "issuer": settings.oidc.issuer,
            "client_id": settings.oidc.client_id,
            "client_secret_file": settings.oidc.client_secret_file,
            "groups_claim": settings.oidc.groups_claim,
            "allowed_groups": sorted(DEMO_GROUPS),
        }
    configure_sciencelab(
        c,
        profiles_file=str(state / "profiles.yaml"),
        service_port=settings.service_port,
        sessions_file=str(state / "sciencelab-sessions.json"),
        check=False,
        **login,
    )
    c.LocalProfileSpawner.run_as_hub_user = True
    c.LocalProfileSpawner.home_dir_template = str(state / "home" / "{username}")
    # The interpreter running the hub has our server extension; PATH may not point at it.
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    c.Spawner.default_url = "/lab"
    # A cold JupyterLab on a busy 2-core laptop can take a while to answer.
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    return c


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DemoError(Exception):
    """The demo cannot start; the message says what to do."""


def make_demo_settings(
    state_dir: str,
    port: int,
    user_password: str | None,
    admin_password: str | None,
    oidc: DemoOidc | None = None,
) -> DemoSettings:
    """Check the command-line choices and fill in the rest (ports, proxy, generated passwords)."""
    proxy_command = shutil.which("configurable-http-proxy")
    if proxy_command is None:
        raise DemoError(
            "configurable-http-proxy is not on PATH. Run `make demo` from the repository, "
            "or install it with `npm install -g configurable-http-proxy`."
        )
    user_password = user_password or secrets.token_urlsafe(9)
    admin_password = admin_password or secrets.token_urlsafe(32)
    if len(user_password) < MIN_USER_PASSWORD:
        raise DemoError(f"--password: must be at least {MIN_USER_PASSWORD} characters")
    if len(admin_password) < MIN_ADMIN_PASSWORD or admin_password == user_password:
        raise DemoError(
            f"--admin-password: must be at least {MIN_ADMIN_PASSWORD} characters and differ from --password"
        )
    return DemoSettings(
        state_dir=Path(state_dir).resolve(),
        port=port,
        hub_port=free_port(),
        proxy_api_port=free_port(),
        service_port=free_port(),
        proxy_command=proxy_command,
        user_password=user_password,
        admin_password=admin_password,
        oidc=oidc,
    )


def make_demo_banner(settings: DemoSettings) -> str:
    """What the demo prints once its hub answers: where it is and how to log in."""
    if settings.oidc is None:
        login = (
            f"  users {', '.join(DEMO_USERS)}: password {settings.user_password} (alice is in gpu-users)\n"
            f"  admin user {DEMO_ADMIN}: password {settings.admin_password}\n"
        )
    else:
        login = (
            f"  users log in at {settings.oidc.issuer}: {', '.join(DEMO_USERS)} and members of "
            f"{', '.join(DEMO_GROUPS)} (groups from its {settings.oidc.groups_claim!r} claim)\n"
        )
    return (
        f"\nScienceLab demo hub: http://127.0.0.1:{settings.port}\n"
        f"{login}"
        f"  profiles in {settings.state_dir / 'profiles.yaml'} (edit it while the hub runs)\n"
        f"  state in {settings.state_dir}; Ctrl-C stops the hub and every server.\n"
    )


class DemoJupyterHub(JupyterHub):
    """JupyterHub as the demo runs it: the banner once the hub answers, one clean stop on Ctrl-C.

    JupyterHub handles SIGINT and SIGTERM only once it has started (Ctrl-C while it starts leaves
    the proxy and the service running), runs its whole cleanup again on a second signal, and leaves
    its periodic service health check running through the cleanup, where it fails on the service
    just removed (`'NoneType' object has no attribute 'proto'`). The demo takes both signals from
    the start, stops once, through JupyterHub's `stop()` (periodic callbacks first, then cleanup).
    """

    banner = ""  # make_demo_banner's
    _started = False
    _stop_requested = False

    async def initialize(self, *args, **kwargs):
        self.handle_stop_signals()
        await super().initialize(*args, **kwargs)

    async def start(self):
        await super().start()
        # JupyterHub's start returns once the proxy routes to the hub: from now on /hub/login answers.
        self._started = True
        if self._stop_requested:
            self.stop()
        else:
            print(self.banner, flush=True)

    def init_signal(self):
        # Called at the end of JupyterHub's start: ours replace its SIGINT and SIGTERM handlers.
        super().init_signal()
        self.handle_stop_signals()

    def handle_stop_signals(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop_once, sig)

    def stop_once(self, sig: signal.Signals):
        if self._stop_requested:
            self.log.warning("Received %s again: still stopping", sig.name)
        elif not self._started:
            self._stop_requested = True
            self.log.info("Received %s while starting: stopping as soon as the hub has started", sig.name)
        else:
            self._stop_requested = True
            self.log.info("Received %s: stopping every server, the sciencelab service and the proxy", sig.name)
            self.stop()


def read_or_make_secret(path: Path) -> str:
    """The hex secret in `path`, made (32 random bytes, owner-only) the first time."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def run_demo(settings: DemoSettings):
    """Run the demo hub until Ctrl-C (SIGINT) or SIGTERM; JupyterHub stops servers and proxy."""
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    extra_config = settings.state_dir / "jupyterhub_config.py"
    if not extra_config.exists():
        extra_config.write_text(EXTRA_CONFIG_TEMPLATE)
    profiles = settings.state_dir / "profiles.yaml"
    if not profiles.exists():
        profiles.write_text(DEMO_PROFILES_FILE.read_text())
    check_profiles(str(profiles), None)
    if settings.oidc is not None:
        # The users' tokens are kept in the hub's database, encrypted with this key (JupyterHub's auth state).
        os.environ.setdefault("JUPYTERHUB_CRYPT_KEY", read_or_make_secret(settings.state_dir / "jupyterhub_crypt_key"))
    hub = DemoJupyterHub.instance(config=make_demo_config(settings))
    hub.banner = make_demo_banner(settings)
    DemoJupyterHub.launch_instance(argv=[])
