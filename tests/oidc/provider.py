"""A real OpenID Connect provider on 127.0.0.1 for login tests: `provider/provider.mjs` (panva's oidc-provider)
run by Node, configured through JSON files in its folder.

Files, all in `folder`:
- `config.json`: `{port, users, clients, state_dir, access_token_ttl}`, read once at start.
- `users.json`: a list of users, read again on every account lookup, so `set_users` takes effect at once. A user
  is `{"username", "password", "email", "groups": ["gpu-users"], "wlcg.groups": ["/gpu-users"]}` and may name
  its `sub` (otherwise a stable hash of the username). `groups` is a claim of scope `profile`, `wlcg.groups`
  of scope `wlcg.groups`, `email` of `email`; an empty list leaves its claim out, as INDIGO-IAM does. Claims
  come both in the id_token and from the userinfo endpoint.
- `clients.json`: the confidential clients (`OidcClient`), read on every lookup, so `add_client` takes effect
  at once. Each may use `authorization_code` (PKCE with S256 optional) and `refresh_token`, and authenticate
  with `client_secret_basic` or `client_secret_post`; a refresh token comes with every code exchange.
- `state/`: the signing key, cookie keys, sessions, grants and tokens, kept across `stop()` and `start()`, so a
  test can take the provider down and bring it back on the same issuer with its tokens still valid.
- `provider.log`: one line per request, and why a request was refused (`grant.error: invalid_client ...`).
"""

import json
import os
import shutil
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from sciencelab_spawner.demo import free_port

from ..service_process import wait_until_answering

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
START_TIMEOUT = 30
STOP_TIMEOUT = 10

# alice is in the group that grants GPUs, bob in none: his token carries neither group claim.
TEST_USERS = [
    {
        "username": "alice",
        "password": "alice-password",
        "email": "alice@example.org",
        "groups": ["gpu-users"],
        "wlcg.groups": ["/gpu-users"],
    },
    {"username": "bob", "password": "bob-password", "email": "bob@example.org", "groups": [], "wlcg.groups": []},
]


def users_without_groups(username: str, users: list[dict] = TEST_USERS) -> list[dict]:
    """`users` with `username` removed from every group at the provider (both claims then left out)."""
    return [{**user, "groups": [], "wlcg.groups": []} if user["username"] == username else user for user in users]


@dataclass(frozen=True)
class OidcClient:
    """A confidential client of the provider; `access_token_ttl` (seconds) overrides the provider's."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    access_token_ttl: int | None = None


def write_json_atomically(path: Path, value):
    """Write `value` to `path` so that a reader sees the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=2))
    os.replace(partial, path)


class OidcProvider:
    """One `node provider.mjs` process on a free port of 127.0.0.1; its files and log under `folder`.

    `start()` and `stop()` may alternate: the issuer, the port and every token stay the same.
    """

    def __init__(self, folder: Path, users: list[dict] = TEST_USERS, access_token_ttl: int = 3600):
        self.folder = folder
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "provider.log"
        self.users_path = folder / "users.json"
        self.clients_path = folder / "clients.json"
        self.config_path = folder / "config.json"
        state_dir = folder / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        self.clients: dict[str, OidcClient] = {}
        self.set_users(users)
        write_json_atomically(self.clients_path, [])
        write_json_atomically(
            self.config_path,
            {
                "port": self.port,
                "users": str(self.users_path),
                "clients": str(self.clients_path),
                "state_dir": str(state_dir),
                "access_token_ttl": access_token_ttl,
            },
        )
        self.process: subprocess.Popen | None = None

    @staticmethod
    def missing() -> str | None:
        """Why the provider cannot run here (Node or the npm package absent), or None."""
        if shutil.which("node") is None:
            return "node not found: install Node.js 20 or later"
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return f"oidc-provider not installed: run `npm ci` in {PROVIDER_DIR} (`make .stamps/oidc` does)"
        return None

    def start(self) -> "OidcProvider":
        """Start the provider and wait until its discovery document answers (at most 30 s)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["node", "provider.mjs", str(self.config_path)], cwd=PROVIDER_DIR, stdout=log, stderr=subprocess.STDOUT
            )
        wait_until_answering(
            self.process, lambda: bool(self.discovery()), START_TIMEOUT, "the OIDC provider", self.log_tail
        )
        return self

    def stop(self):
        """SIGTERM, then SIGKILL if it has not exited after 10 s. Clients then get "connection refused"."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def discovery(self) -> dict:
        """The provider's `/.well-known/openid-configuration`."""
        response = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=5)
        response.raise_for_status()
        return response.json()

    def set_users(self, users: list[dict]):
        """Replace the provider's users (see the module's docstring); the next token or userinfo answer uses them."""
        write_json_atomically(self.users_path, users)

    def add_client(
        self, client_id: str, client_secret: str, redirect_uris: list[str], access_token_ttl: int | None = None
    ) -> OidcClient:
        """Register a confidential client, or replace the one with that id; usable at once, running or not."""
        client = OidcClient(client_id, client_secret, tuple(redirect_uris), access_token_ttl)
        self.clients[client_id] = client
        write_json_atomically(
            self.clients_path,
            [
                {key: value for key, value in asdict(each).items() if value is not None}
                for each in self.clients.values()
            ],
        )
        return client

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
