"""The OIDC provider fixture does what the login tests rely on, checked with requests as a browser and a
confidential client would: the form, the code flow with PKCE, signed id_tokens, claims, refresh, expiry, restart.
"""

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
import pytest
import requests

from .provider import TEST_USERS, OidcClient, OidcProvider, users_without_groups

REDIRECT_URI = "http://127.0.0.1:9/hub/oauth_callback"  # never fetched: the flow stops at the redirect to it
SCOPE = "openid profile email wlcg.groups"
FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


@dataclass(frozen=True)
class Tokens:
    """A token endpoint's answer, the id_token's claims checked against the provider's signing key."""

    access_token: str
    refresh_token: str
    id_claims: dict


@pytest.fixture
def client(oidc_provider) -> OidcClient:
    return oidc_provider.add_client("provider-test", secrets.token_urlsafe(16), [REDIRECT_URI])


@pytest.fixture
def provider_users_restored(oidc_provider):
    """The session's provider, with its users put back after the test."""
    yield oidc_provider
    oidc_provider.set_users(TEST_USERS)


def login_form(browser: requests.Session, provider: OidcProvider, client: OidcClient) -> tuple[requests.Response, dict]:
    """Start a code flow with PKCE (S256) as a browser would; the login page and the flow's parameters."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    flow = {"state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), "code_verifier": verifier}
    page = browser.get(
        provider.discovery()["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "state": flow["state"],
            "nonce": flow["nonce"],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    page.raise_for_status()
    return page, flow


def submit(browser: requests.Session, page: requests.Response, username: str, password: str) -> requests.Response:
    """Fill in the login form of `page` and submit it; the answer, redirects not followed."""
    action = urljoin(page.url, FORM_ACTION.search(page.text).group(1))
    return browser.post(action, data={"username": username, "password": password}, allow_redirects=False, timeout=10)


def log_in(provider: OidcProvider, client: OidcClient, username: str, password: str) -> tuple[str, dict]:
    """The authorization code for `username`, and the flow's parameters; consent is granted without a page."""
    browser = requests.Session()
    page, flow = login_form(browser, provider, client)
    answer = submit(browser, page, username, password)
    # The provider's own redirects (resume, consent, resume), up to the one that leaves for the client.
    while answer.is_redirect and not answer.headers["Location"].startswith(REDIRECT_URI):
        answer = browser.get(urljoin(answer.url, answer.headers["Location"]), allow_redirects=False, timeout=10)
    assert answer.is_redirect, f"the provider stopped at {answer.url} ({answer.status_code}):\n{answer.text[:500]}"
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == [flow["state"]]
    assert query["iss"] == [provider.issuer]
    return query["code"][0], flow


def checked_id_claims(provider: OidcProvider, client: OidcClient, id_token: str) -> dict:
    signing_key = jwt.PyJWKClient(provider.discovery()["jwks_uri"]).get_signing_key_from_jwt(id_token)
    return jwt.decode(id_token, signing_key, algorithms=["RS256"], audience=client.client_id, issuer=provider.issuer)


def token_request(provider: OidcProvider, client: OidcClient, form: dict, secret: str | None = None):
    """POST to the token endpoint, authenticating with client_secret_basic."""
    return requests.post(
        provider.discovery()["token_endpoint"],
        data=form,
        auth=(client.client_id, secret or client.client_secret),
        timeout=10,
    )


def tokens_of(provider: OidcProvider, client: OidcClient, response: requests.Response) -> Tokens:
    assert response.status_code == 200, response.text
    answer = response.json()
    return Tokens(
        answer["access_token"], answer["refresh_token"], checked_id_claims(provider, client, answer["id_token"])
    )


def code_grant(provider: OidcProvider, client: OidcClient, username: str) -> Tokens:
    password = next(user["password"] for user in TEST_USERS if user["username"] == username)
    code, flow = log_in(provider, client, username, password)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": flow["code_verifier"],
    }
    tokens = tokens_of(provider, client, token_request(provider, client, form))
    assert tokens.id_claims["nonce"] == flow["nonce"]
    return tokens


def refresh_grant(provider: OidcProvider, client: OidcClient, refresh_token: str) -> requests.Response:
    """The refresh grant as a client using client_secret_post sends it."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
    }
    return requests.post(provider.discovery()["token_endpoint"], data=form, timeout=10)


def userinfo(provider: OidcProvider, access_token: str) -> requests.Response:
    return requests.get(
        provider.discovery()["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )


def test_discovery_describes_a_code_flow_provider_with_group_claims(oidc_provider):
    discovery = oidc_provider.discovery()
    assert discovery["issuer"] == oidc_provider.issuer == f"http://127.0.0.1:{oidc_provider.port}"
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert discovery[endpoint].startswith(f"{oidc_provider.issuer}/"), endpoint
    assert {"authorization_code", "refresh_token"} <= set(discovery["grant_types_supported"])
    assert discovery["response_types_supported"] == ["code"]
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(discovery["token_endpoint_auth_methods_supported"])
    assert {"openid", "profile", "email", "wlcg.groups", "offline_access"} <= set(discovery["scopes_supported"])
    assert {"sub", "preferred_username", "email", "groups", "wlcg.groups"} <= set(discovery["claims_supported"])


def test_alice_logs_in_with_pkce_and_her_groups_are_in_the_id_token_and_userinfo(oidc_provider, client):
    tokens = code_grant(oidc_provider, client, "alice")
    claims = userinfo(oidc_provider, tokens.access_token).json()
    for source in (tokens.id_claims, claims):
        assert source["preferred_username"] == "alice"
        assert source["email"] == "alice@example.org"
        assert source["groups"] == ["gpu-users"]
        assert source["wlcg.groups"] == ["/gpu-users"]
    # A stable subject that is not the username, as INDIGO-IAM's: the hub must name users by preferred_username.
    assert tokens.id_claims["sub"] == claims["sub"] != "alice"
    assert code_grant(oidc_provider, client, "alice").id_claims["sub"] == claims["sub"]


def test_bob_in_no_group_gets_neither_group_claim(oidc_provider, client):
    tokens = code_grant(oidc_provider, client, "bob")
    claims = userinfo(oidc_provider, tokens.access_token).json()
    for source in (tokens.id_claims, claims):
        assert source["preferred_username"] == "bob"
        assert "groups" not in source
        assert "wlcg.groups" not in source


def test_a_refresh_after_alice_left_the_group_no_longer_carries_it(provider_users_restored, client):
    provider = provider_users_restored
    tokens = code_grant(provider, client, "alice")
    provider.set_users(users_without_groups("alice"))
    refreshed = tokens_of(provider, client, refresh_grant(provider, client, tokens.refresh_token))
    claims = userinfo(provider, refreshed.access_token).json()
    for source in (refreshed.id_claims, claims):
        assert source["preferred_username"] == "alice"
        assert "groups" not in source
        assert "wlcg.groups" not in source


def test_a_wrong_client_secret_is_refused_with_invalid_client(oidc_provider, client):
    code, flow = log_in(oidc_provider, client, "alice", "alice-password")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = token_request(oidc_provider, client, {**form, "code_verifier": flow["code_verifier"]}, "wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_wrong_password_shows_the_form_again(oidc_provider, client):
    browser = requests.Session()
    page, _ = login_form(browser, oidc_provider, client)
    assert urlsplit(page.url).path.startswith("/interaction/")
    answer = submit(browser, page, "alice", "not-her-password")
    assert answer.status_code == 200
    for element in ('id="username"', 'id="password"', 'type="submit"', "Wrong username or password"):
        assert element in answer.text
    assert 'value="alice"' in answer.text


def test_an_access_token_expires_after_the_clients_lifetime_and_a_refresh_renews_it(oidc_provider):
    short_lived = oidc_provider.add_client("short-lived", secrets.token_urlsafe(16), [REDIRECT_URI], access_token_ttl=1)
    tokens = code_grant(oidc_provider, short_lived, "alice")
    assert userinfo(oidc_provider, tokens.access_token).status_code == 200
    time.sleep(2.5)
    expired = userinfo(oidc_provider, tokens.access_token)
    assert expired.status_code == 401
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    refreshed = refresh_grant(oidc_provider, short_lived, tokens.refresh_token)
    assert refreshed.json()["expires_in"] == 1
    assert userinfo(oidc_provider, refreshed.json()["access_token"]).status_code == 200


def test_tokens_issued_before_a_restart_still_work_after_it(oidc_provider, client):
    tokens = code_grant(oidc_provider, client, "alice")
    oidc_provider.stop()
    try:
        with pytest.raises(requests.ConnectionError):
            oidc_provider.discovery()
    finally:
        oidc_provider.start()
    assert userinfo(oidc_provider, tokens.access_token).json()["preferred_username"] == "alice"
    refreshed = tokens_of(oidc_provider, client, refresh_grant(oidc_provider, client, tokens.refresh_token))
    assert refreshed.id_claims["sub"] == tokens.id_claims["sub"]
