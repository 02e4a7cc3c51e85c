"""Login through the site's OpenID Connect provider (INDIGO-IAM, Keycloak, ...): groups decide profiles.

`SciencelabOIDCAuthenticator` is oauthenticator's `GenericOAuthenticator` configured from the issuer's
discovery document (`/.well-known/openid-configuration`), with hub groups following a claim of the
provider at every login and refresh, so profiles' `allowed_groups` and GPU quotas work unchanged. What
it adds is what a site meets on day one: the endpoints come from the issuer alone, the client secret
from a file, a provider that is down or refuses the hub's credentials gives a page that says so (and
one log line naming the cause), and a user in no allowed group reads which groups would let them in.

The pure part (`resolve_endpoints`, `groups_from_claim`, `make_*_message`) is tested on its own; the
class only does I/O.
"""

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Enum, Float, Unicode, default

from .server_token import offer_server_token
from .user_options import shown

DISCOVERY_PATH = "/.well-known/openid-configuration"
# INDIGO-IAM puts plain names in `groups` (scope `profile`) and "/"-prefixed paths in `wlcg.groups`
# (scope `wlcg.groups`, which the provider sends only when asked for).
WLCG_GROUPS_CLAIM = "wlcg.groups"


class OidcConfigurationError(ValueError):
    """The issuer's discovery document cannot configure a login: names the field and the URL."""


@dataclass(frozen=True)
class OidcEndpoints:
    """Where the hub sends the browser and where it asks for tokens and for the user's claims."""

    authorize_url: str
    token_url: str
    userinfo_url: str


def discovery_url(issuer: str) -> str:
    """The discovery document of `issuer` (OpenID Connect Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + DISCOVERY_PATH


def resolve_endpoints(issuer: str, discovery: object) -> OidcEndpoints:
    """The endpoints a discovery document names, checked: it must be the issuer's own (the spec's
    rule against a document served for another issuer), and name each endpoint as an http(s) URL."""
    url = discovery_url(issuer)
    if not isinstance(discovery, Mapping):
        raise OidcConfigurationError(f"{url} is not a JSON object: got {shown(discovery)}")
    if str(discovery.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise OidcConfigurationError(
            f"{url} names the issuer {shown(discovery.get('issuer'))}, not {issuer!r}: "
            "set the issuer to the provider's own URL, exactly as its discovery document gives it"
        )
    endpoints = {}
    for field in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
        value = discovery.get(field)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise OidcConfigurationError(f"{url}: {field} is {shown(value)}, not an http(s) URL")
        endpoints[field] = value
    return OidcEndpoints(
        authorize_url=endpoints["authorization_endpoint"],
        token_url=endpoints["token_endpoint"],
        userinfo_url=endpoints["userinfo_endpoint"],
    )


def groups_from_claim(claims: Mapping, claim: str) -> frozenset[str] | None:
    """The hub groups a user's claims put them in; None when the claim is absent (INDIGO-IAM omits
    an empty list). `wlcg.groups` paths lose their leading "/" ("/gpu-users" is the group
    "gpu-users", "/cms/higgs" is "cms/higgs"), so one profile file serves either claim."""
    value = claims.get(claim)
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return frozenset(name.removeprefix("/") for name in values if isinstance(name, str) and name.strip("/"))


def make_default_scope(groups_claim: str) -> list[str]:
    """What the hub asks the provider for: who the user is, their groups and a refresh token."""
    scope = ["openid", "profile", "email", "offline_access"]
    return [*scope, WLCG_GROUPS_CLAIM] if groups_claim == WLCG_GROUPS_CLAIM else scope


def make_not_allowed_message(groups: frozenset[str] | None, claim: str, allowed: set[str]) -> str:
    """The login page's words for a user the provider knows but who is in none of the allowed groups."""
    admits = f"it admits members of {', '.join(sorted(allowed))}" if allowed else "it admits only the users it lists"
    if groups is None:
        found = f"your identity provider sent no {claim!r} claim, so you are in no group here"
    elif not groups:
        found = "your identity provider lists you in no group"
    else:
        found = f"your identity provider lists you in {', '.join(sorted(groups))}"
    return (
        f"You are not allowed on this hub: {admits}, and {found}. "
        "If you should be, ask your hub admin (or your group's manager) to add you at the identity provider, "
        "then log in again."
    )


def make_unavailable_message(issuer: str, cause: str) -> str:
    """The login page's words when the provider cannot log anyone in right now."""
    return (
        f"Login is unavailable: the identity provider {issuer} {cause}. "
        "Nothing is wrong with your account; try again in a few minutes, and if this lasts, tell your hub admin "
        "this message."
    )


def is_due_for_renewal(auth_state: Mapping | None, now: float, margin: float) -> bool:
    """Whether the access token in `auth_state` expires within `margin` seconds of `now` (or has
    expired) and a refresh token can renew it. `expires_at` is what `get_token_info` adds to the
    provider's answer; a provider that gives no `expires_in` leaves renewal to a refused access token."""
    if not auth_state or not auth_state.get("refresh_token"):
        return False
    expires_at = (auth_state.get("token_response") or {}).get("expires_at")
    return isinstance(expires_at, int | float) and expires_at - now < margin


class LoginRefusal(web.HTTPError):
    """A login the hub cannot complete, shown as its message alone on JupyterHub's error page (and
    logged once by the authenticator, so tornado's own warning carries no second copy)."""

    def __init__(self, status_code: int, message: str):
        super().__init__(status_code, reason="Login refused" if status_code == 403 else "Login unavailable")
        self.jupyterhub_message = message


class SciencelabOIDCLoginHandler(OAuthLoginHandler):
    """oauthenticator's login redirect, after checking that the provider answers: a provider that is
    down gives the hub's page saying so instead of a browser stranded on a connection error."""

    async def get(self):
        await self.authenticator.load_endpoints()
        super().get()


class SciencelabOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator for an OpenID Connect issuer, configured from its discovery document.

    Set `issuer`, `client_id` and `client_secret_file` (or the environment variable
    `OAUTH_CLIENT_SECRET`); `groups_claim` names the claim whose groups become hub groups at every
    login and refresh; `allowed_groups` and `admin_groups` are oauthenticator's own.
    """

    login_handler = SciencelabOIDCLoginHandler

    issuer = Unicode(
        "",
        config=True,
        help="""The OpenID Connect issuer URL; its discovery document (`<issuer>/.well-known/openid-configuration`)
        gives the authorization, token and userinfo endpoints. Default: "" (required). Example:
        "https://iam.example.org/".""",
    )
    client_secret_file = Unicode(
        "",
        config=True,
        help="""A file holding the OAuth client secret (surrounding whitespace ignored), read at start-up: a
        mounted Secret, never a literal in the configuration. Default: "" (then the environment variable
        OAUTH_CLIENT_SECRET). Example: "/etc/sciencelab/oidc/client-secret".""",
    )
    groups_claim = Unicode(
        "groups",
        config=True,
        help="""The claim listing the user's groups, which become their hub groups at every login and refresh:
        "groups" (INDIGO-IAM and Keycloak's plain names), "wlcg.groups" (INDIGO-IAM's "/"-prefixed paths; the
        "/" is dropped and the scope "wlcg.groups" requested), or another claim of the userinfo answer.
        Default: "groups".""",
    )
    token_renewal_margin = Float(
        60,
        config=True,
        help="""Seconds before its expiry at which a refresh (every `auth_refresh_age`, and before each spawn)
        renews the access token with the refresh token rather than using it once more. Default: 60. Example: 300
        for a provider whose tokens live 10 minutes.""",
    )
    server_token = Enum(
        ["", "access_token", "id_token"],
        "",
        config=True,
        help="""Which of the user's tokens their servers get, as a file the hub rewrites after each refresh that
        renewed it (its path in $SCIENCELAB_TOKEN_FILE; the token itself never in the environment): for a server
        that exchanges it for S3 STS credentials or an HTCondor or SLURM token. Default: "" (none). Example:
        "access_token".""",
    )
    discovery_timeout = Float(
        10,
        config=True,
        help="""Seconds to wait for the provider's discovery document before telling the user that login is
        unavailable. Default: 10. Example: 5.""",
    )

    @default("login_service")
    def _login_service_default(self):
        return "your institute's account"

    @default("client_secret")
    def _client_secret_default(self):
        if self.client_secret_file:
            return Path(self.client_secret_file).read_text().strip()
        return os.environ.get("OAUTH_CLIENT_SECRET", "")

    @default("username_claim")
    def _username_claim_default(self):
        return "preferred_username"

    @default("scope")
    def _scope_default(self):
        return make_default_scope(self.groups_claim)

    @default("manage_groups")
    def _manage_groups_default(self):
        return True

    @default("enable_auth_state")
    def _enable_auth_state_default(self):
        return True

    @default("auth_state_groups_key")
    def _auth_state_groups_key_default(self):
        return self.groups_in_auth_state

    @default("refresh_pre_spawn")
    def _refresh_pre_spawn_default(self):
        return True

    @default("auth_refresh_age")
    def _auth_refresh_age_default(self):
        return 300

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.issuer:
            raise ValueError("SciencelabOIDCAuthenticator.issuer is not set: give the provider's issuer URL")
        self._endpoints: OidcEndpoints | None = None

    async def load_endpoints(self) -> OidcEndpoints:
        """Read the discovery document, each time (a login is rare, and a provider that went down must
        be noticed before the browser is sent to it); keep the last endpoints for the token calls."""
        url = discovery_url(self.issuer)
        try:
            response = await self.http_client.fetch(url, request_timeout=self.discovery_timeout)
            endpoints = resolve_endpoints(self.issuer, json.loads(response.body))
        except OidcConfigurationError as error:
            raise self.unavailable(f"is misconfigured for this hub ({error})", f"discovery: {error}") from None
        except (OSError, HTTPClientError, ValueError) as error:
            raise self.unavailable("does not answer", f"discovery at {url} failed: {error}") from None
        self._endpoints = endpoints
        self.authorize_url, self.token_url, self.userdata_url = (
            endpoints.authorize_url,
            endpoints.token_url,
            endpoints.userinfo_url,
        )
        return endpoints

    def unavailable(self, cause: str, log_cause: str) -> LoginRefusal:
        self.log.error("OIDC login unavailable: %s", log_cause)
        return LoginRefusal(503, make_unavailable_message(self.issuer, cause))

    async def get_token_info(self, handler, params):
        """oauthenticator's token request, with the provider's refusals told apart: a wrong client
        secret is the hub's configuration, not the user's fault, and says so."""
        if self._endpoints is None:  # a hub restarted between the redirect and the callback
            await self.load_endpoints()
        try:
            token_info = await super().get_token_info(handler, params)
        except HTTPClientError as error:
            body = error.response.body if error.response is not None else b""
            if b"invalid_client" in body:
                raise self.unavailable(
                    "refuses this hub's client credentials",
                    f"the token endpoint refused client {self.client_id!r} (invalid_client): check the client id "
                    "and secret registered at the provider",
                ) from None
            raise self.unavailable("refused the login", f"token request failed: {error}") from None
        except OSError as error:
            raise self.unavailable("does not answer", f"token request to {self.token_url} failed: {error}") from None
        if isinstance(token_info.get("expires_in"), int | float):
            token_info["expires_at"] = time.time() + token_info["expires_in"]
        return token_info

    def claimed_groups(self, auth_state: Mapping | None) -> frozenset[str] | None:
        """The groups the claims in `auth_state` name (`groups_from_claim`); None without the claim."""
        return groups_from_claim((auth_state or {}).get(self.user_auth_state_key) or {}, self.groups_claim)

    def groups_in_auth_state(self, auth_state: Mapping) -> set[str]:
        """The user's hub groups (oauthenticator's `auth_state_groups_key`)."""
        return set(self.claimed_groups(auth_state) or ())

    async def check_allowed(self, username, auth_model):
        if await super().check_allowed(username, auth_model):
            return True
        groups = self.claimed_groups(auth_model.get("auth_state"))
        self.log.warning(
            "OIDC login refused for %s: %s %s, allowed groups %s",
            username,
            self.groups_claim,
            "claim absent" if groups is None else sorted(groups),
            sorted(self.allowed_groups),
        )
        raise LoginRefusal(403, make_not_allowed_message(groups, self.groups_claim, self.allowed_groups))

    async def refresh_user(self, user, handler=None, **kwargs):
        """oauthenticator's refresh (claims again from the userinfo endpoint, groups with them), but an
        access token that expires within `token_renewal_margin` is renewed with the refresh token first,
        so a spawn never starts on a token about to lapse."""
        auth_state = await user.get_auth_state()
        if is_due_for_renewal(auth_state, time.time(), self.token_renewal_margin):
            refresh_token = auth_state["refresh_token"]
            try:
                fresh = await self.get_token_info(handler, self.build_refresh_token_request_params(refresh_token))
            except web.HTTPError:
                return False  # the refresh token is spent or revoked: log in again
            fresh.setdefault("refresh_token", refresh_token)
            renewed = {"access_token": fresh["access_token"], "refresh_token": fresh["refresh_token"]}
            await user.save_auth_state({**auth_state, **renewed, "token_response": fresh})
        refreshed = await super().refresh_user(user, handler, **kwargs)
        if self.server_token and isinstance(refreshed, dict):
            await offer_server_token(user, (refreshed.get("auth_state") or {}).get(self.server_token), self.log)
        return refreshed
