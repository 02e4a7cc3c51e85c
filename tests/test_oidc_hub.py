"""Login through a real OpenID Connect provider: the demo hub with `--oidc-issuer` against `oidc_provider`
(tests/oidc), driven by Chromium through the real redirect and password form.

alice is in gpu-users at the provider, bob in no group (the demo lets him in by name), carol in no group
and not on the hub's list. Hub groups follow the provider's claim at login and at every refresh; failures
of the provider give readable pages and one log line while the hub keeps serving.
"""

import json
import secrets
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from sciencelab_spawner.oidc_login import make_not_allowed_message

from .conftest import LAB_TIMEOUT_MS
from .demo_hub import DemoHub
from .fake_gpus import FakeNvml, make_gpu
from .oidc.provider import TEST_USERS, users_without_groups

pytestmark = [pytest.mark.hub, pytest.mark.browser]

CLIENT_ID = "sciencelab-demo"
# The hub's access tokens live ACCESS_TOKEN_TTL s; a refresh (at most every REFRESH_AGE s) reads the claims
# with the access token, or, in its last RENEWAL_MARGIN s or after it expired, renews it with the refresh token.
ACCESS_TOKEN_TTL = 24
RENEWAL_MARGIN = 12
REFRESH_AGE = 2
# Seconds between the hub's polls of a running server (JupyterHub's default: 30).
POLL_INTERVAL = 2
ADMIN_TOKEN = secrets.token_hex(32)
PASSWORDS = {user["username"]: user["password"] for user in TEST_USERS}
CAROL = {"username": "carol", "password": "carol-password", "email": "carol@example.org", "groups": ["atlas"]}
# In no group: the provider leaves the groups claim out, as INDIGO-IAM does.
DAVE = {"username": "dave", "password": "dave-password", "email": "dave@example.org", "groups": []}


@pytest.fixture(scope="module")
def oidc_hub(oidc_provider, tmp_path_factory):
    """The demo hub logging users in at `oidc_provider` as client CLIENT_ID, with two (stubbed) GPUs for
    alice's GPU profile and an admin service token for the checks (users have no password here)."""
    state = tmp_path_factory.mktemp("oidc-hub")
    nvml = FakeNvml(state / "nvml.json")
    nvml.set([make_gpu(0), make_gpu(1)])
    secret = secrets.token_urlsafe(32)
    secret_file = state / "client-secret"
    secret_file.touch(mode=0o600)
    secret_file.write_text(secret + "\n")
    extra_config = textwrap.dedent(f"""
        c.SciencelabOIDCAuthenticator.auth_refresh_age = {REFRESH_AGE}
        c.SciencelabOIDCAuthenticator.token_renewal_margin = {RENEWAL_MARGIN}
        c.SciencelabOIDCAuthenticator.discovery_timeout = 3
        c.Spawner.poll_interval = {POLL_INTERVAL}
        c.SciencelabOIDCAuthenticator.server_token = "access_token"
        c.JupyterHub.services.append({{"name": "oidc-tests", "api_token": {ADMIN_TOKEN!r}}})
        c.JupyterHub.load_roles.append(
            {{"name": "oidc-tests", "scopes": ["admin:users", "admin:servers", "admin:server_state", "admin:auth_state"],
              "services": ["oidc-tests"]}}
        )
    """)
    hub = DemoHub(
        state,
        extra_config=extra_config,
        env={**nvml.environ, "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)},
        args=[f"--oidc-issuer={oidc_provider.issuer}", f"--oidc-client-secret-file={secret_file}"],
    )
    oidc_provider.add_client(CLIENT_ID, secret, [f"{hub.url}/hub/oauth_callback"], access_token_ttl=ACCESS_TOKEN_TTL)
    hub.use_token("admin", ADMIN_TOKEN)
    hub.client_secret = secret
    hub.start()
    try:
        yield hub
        hub.check_log()
    finally:
        hub.stop()


@pytest.fixture
def provider(oidc_provider):
    """The provider, its users and the hub's client put back after the test, and running."""
    yield oidc_provider
    oidc_provider.set_users(TEST_USERS)
    if not oidc_provider.running():
        oidc_provider.start()


def log_in(browser, hub: DemoHub, user: str, password: str | None = None):
    """A new browser (no provider session yet) that logs `user` in at the provider; returns its page,
    on the hub page the login ended on."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{hub.url}/hub/login")
    page.get_by_text("Sign in with your institute's account").click()
    page.fill("#username", user)
    page.fill("#password", password or PASSWORDS.get(user, ""))
    page.click("button#sign-in")
    page.wait_for_url(f"{hub.url}/**", timeout=LAB_TIMEOUT_MS)
    page.wait_for_load_state()
    return page


def api_token(page, hub: DemoHub, user: str) -> str:
    """An API token of `user`, made with the browser's login cookie (and its XSRF token) as the hub's
    token page does; the hub then calls the API as `user` with it."""
    xsrf = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "_xsrf")
    response = page.request.post(
        f"{hub.url}/hub/api/users/{user}/tokens", headers={"X-XSRFToken": xsrf}, data={"note": "oidc tests"}
    )
    assert response.status == 201, response.text()
    token = response.json()["token"]
    hub.use_token(user, token)
    return token


# Run in a kernel of the user's server: the token file's mode and content.
READ_TOKEN_FILE = (
    "import os, stat; path = os.environ['SCIENCELAB_TOKEN_FILE']; "
    "print(oct(stat.S_IMODE(os.stat(path).st_mode)), open(path).read())"
)


def hub_groups(hub: DemoHub, user: str) -> list[str]:
    return hub.request("GET", f"/hub/api/users/{user}", "admin").json()["groups"]


def token_requests_made(provider) -> int:
    """How many requests the provider's token endpoint answered (its log has a line per request)."""
    return sum(line.startswith("POST /token ") for line in provider.log_path.read_text().splitlines())


def log_lines(hub: DemoHub, text: str) -> list[str]:
    return [line for line in hub.log_text().splitlines() if text in line]


def test_alice_logs_in_at_the_provider_and_starts_the_gpu_profile_of_her_group(oidc_hub, browser):
    page = log_in(browser, oidc_hub, "alice")
    assert "GPU analysis" in page.content()  # the spawn form: her group's profile is offered
    api_token(page, oidc_hub, "alice")
    assert hub_groups(oidc_hub, "alice") == ["gpu-users"]
    try:
        assert oidc_hub.spawn("alice", {"profile": "gpu", "gpu_count": 1}).status_code in (201, 202)
        assert oidc_hub.server_model("alice")["user_options"]["profile"] == "gpu"
        # The tokens stay on the hub: none in her server's environment or in any log.
        auth_state = oidc_hub.request("GET", "/hub/api/users/alice", "admin").json()["auth_state"]
        tokens = [auth_state[name] for name in ("access_token", "refresh_token", "id_token")]
        with oidc_hub.kernel("alice") as kernel:
            environment = json.loads(kernel.run("import json, os; print(json.dumps(dict(os.environ)))"))
            # Her server reads her access token from a file only she can read, named in its environment.
            offered = kernel.run(READ_TOKEN_FILE).split()
        assert not [name for name, value in environment.items() if any(token in value for token in tokens)]
        assert offered == ["0o600", auth_state["access_token"]]
        assert not [token for token in tokens if token in oidc_hub.log_text()]
    finally:
        oidc_hub.stop_server("alice")
    page.context.close()


def test_bob_in_no_group_does_not_see_the_gpu_profile_and_a_crafted_spawn_is_refused(oidc_hub, browser):
    page = log_in(browser, oidc_hub, "bob")
    assert "CPU analysis" in page.content()
    assert "GPU analysis" not in page.content()
    api_token(page, oidc_hub, "bob")
    assert hub_groups(oidc_hub, "bob") == []
    refused = oidc_hub.spawn("bob", {"profile": "gpu", "gpu_count": 1})
    assert refused.status_code == 403
    assert refused.json()["message"] == "profile: 'gpu' is only for members of gpu-users; choose one of: cpu, collab"
    page.context.close()


def test_a_user_in_no_allowed_group_reads_why_and_the_log_says_it_once(oidc_hub, provider, browser, screenshots):
    provider.set_users([*TEST_USERS, CAROL])
    page = log_in(browser, oidc_hub, "carol", CAROL["password"])
    assert make_not_allowed_message(frozenset({"atlas"}), "groups", {"gpu-users"}) in page.content()
    page.screenshot(path=screenshots / "sciencelab-login-refused.png")
    assert log_lines(oidc_hub, "OIDC login refused for carol") == [
        line for line in log_lines(oidc_hub, "carol") if "OIDC" in line
    ]
    assert len(log_lines(oidc_hub, "OIDC login refused for carol: groups ['atlas'], allowed groups ['gpu-users']")) == 1
    assert requests.get(f"{oidc_hub.url}/hub/api/", timeout=10).status_code == 200
    page.context.close()


def test_a_user_without_the_groups_claim_reads_that_the_provider_sent_none(oidc_hub, provider, browser):
    provider.set_users([*TEST_USERS, DAVE])
    page = log_in(browser, oidc_hub, "dave", DAVE["password"])
    assert make_not_allowed_message(None, "groups", {"gpu-users"}) in page.content()
    assert (
        len(log_lines(oidc_hub, "OIDC login refused for dave: groups claim absent, allowed groups ['gpu-users']")) == 1
    )
    assert requests.get(f"{oidc_hub.url}/hub/api/", timeout=10).status_code == 200
    page.context.close()


class MisconfiguredDiscovery(BaseHTTPRequestHandler):
    """A discovery document served for another issuer than the one the hub was given."""

    def do_GET(self):
        body = json.dumps({"issuer": "https://elsewhere.example.org/", "token_endpoint": "x"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Quiet: the test reads the hub's log, not this one's."""


def test_an_issuer_whose_discovery_names_another_gives_a_page_saying_it_is_misconfigured(browser, tmp_path):
    server = HTTPServer(("127.0.0.1", 0), MisconfiguredDiscovery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    issuer = f"http://127.0.0.1:{server.server_port}"
    secret_file = tmp_path / "client-secret"
    secret_file.write_text("unused")
    hub = DemoHub(
        tmp_path / "hub",
        env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)},
        args=[f"--oidc-issuer={issuer}", f"--oidc-client-secret-file={secret_file}"],
    )
    try:
        hub.start()
        page = browser.new_context().new_page()
        assert page.goto(f"{hub.url}/hub/oauth_login").status == 503
        assert (
            f"Login is unavailable: the identity provider {issuer} is misconfigured for this hub "
            f"({issuer}/.well-known/openid-configuration names the issuer 'https://elsewhere.example.org/', "
            f"not '{issuer}'"
        ) in page.locator("body").inner_text()
        assert len(log_lines(hub, "OIDC login unavailable: discovery: ")) == 1
        assert requests.get(f"{hub.url}/hub/api/", timeout=10).status_code == 200
        page.context.close()
        hub.check_log()
    finally:
        hub.stop()
        server.shutdown()


def test_groups_follow_the_provider_at_each_refresh_with_the_access_token_then_the_refresh_token(
    oidc_hub, provider, browser
):
    page = log_in(browser, oidc_hub, "alice")
    logged_in = time.monotonic()
    api_token(page, oidc_hub, "alice")
    assert hub_groups(oidc_hub, "alice") == ["gpu-users"]
    token_requests = token_requests_made(provider)

    # Removed from the group at the provider: gone at her next request after REFRESH_AGE, read with her
    # access token, which is not yet due for renewal.
    provider.set_users(users_without_groups("alice"))
    time.sleep(REFRESH_AGE + 0.5)
    assert oidc_hub.request("GET", "/hub/api/user", "alice").status_code == 200
    assert time.monotonic() - logged_in < ACCESS_TOKEN_TTL - RENEWAL_MARGIN, "too slow to test the first path"
    assert hub_groups(oidc_hub, "alice") == []
    # Not her last options ({"profile": "gpu", "gpu_count": 1}): the same again would count as the
    # admin page's Start, which falls back to the default profile with a notice.
    refused = oidc_hub.spawn("alice", {"profile": "gpu", "gpu_count": 2})
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"] == "profile: 'gpu' is only for members of gpu-users; choose one of: cpu, collab"
    assert token_requests_made(provider) == token_requests

    # A server of hers, started before the token expires, gets it as a file.
    first_access_token = oidc_hub.request("GET", "/hub/api/users/alice", "admin").json()["auth_state"]["access_token"]
    assert oidc_hub.spawn("alice", {"profile": "cpu"}).status_code in (201, 202)

    # Back in the group, and her access token expired: the refresh renews it with the refresh token
    # (as it would within RENEWAL_MARGIN of the expiry), then reads her claims with the new one.
    provider.set_users(TEST_USERS)
    time.sleep(max(0, ACCESS_TOKEN_TTL + 1 - (time.monotonic() - logged_in)))
    assert oidc_hub.request("GET", "/hub/api/user", "alice").status_code == 200
    assert hub_groups(oidc_hub, "alice") == ["gpu-users"]
    assert token_requests_made(provider) == token_requests + 1  # the refresh token's grant
    # Her running server reads the renewed access token from its file.
    renewed = oidc_hub.request("GET", "/hub/api/users/alice", "admin").json()["auth_state"]["access_token"]
    assert renewed != first_access_token
    with oidc_hub.kernel("alice") as kernel:
        assert kernel.run(READ_TOKEN_FILE).split() == ["0o600", renewed]
    oidc_hub.stop_server("alice")
    page.context.close()


def test_a_server_whose_profile_its_user_lost_keeps_running_and_says_why_on_the_admin_page(oidc_hub, provider, browser):
    page = log_in(browser, oidc_hub, "alice")
    api_token(page, oidc_hub, "alice")
    try:
        assert oidc_hub.spawn("alice", {"profile": "gpu", "gpu_count": 1}).status_code in (201, 202)
        provider.set_users(users_without_groups("alice"))
        time.sleep(REFRESH_AGE + 0.5)
        assert oidc_hub.request("GET", "/hub/api/user", "alice").status_code == 200
        assert hub_groups(oidc_hub, "alice") == []
        # The admin page's Server card lists the server's state: the next poll adds why.
        deadline = time.monotonic() + 5 * POLL_INTERVAL
        while "sciencelab_no_longer_allowed" not in (model := oidc_hub.server_model("alice"))["state"]:
            assert time.monotonic() < deadline, model
            time.sleep(0.2)
        reason = "profile: 'gpu' is only for members of gpu-users; choose one of: cpu, collab"
        assert model["state"]["sciencelab_no_longer_allowed"] == reason
        assert model["ready"] and not model["stopped"]
        assert len(log_lines(oidc_hub, f"keeps running, but its options are no longer allowed: {reason}")) == 1
    finally:
        oidc_hub.stop_server("alice")
        page.context.close()


def test_a_wrong_client_secret_is_the_hubs_configuration_and_the_page_says_so(oidc_hub, provider, browser):
    provider.add_client(
        CLIENT_ID, "not-the-hubs-secret", [f"{oidc_hub.url}/hub/oauth_callback"], access_token_ttl=ACCESS_TOKEN_TTL
    )
    try:
        page = log_in(browser, oidc_hub, "alice")
        assert (
            f"Login is unavailable: the identity provider {provider.issuer} refuses this hub's client credentials."
            in page.content()
        )
        assert len(log_lines(oidc_hub, "the token endpoint refused client 'sciencelab-demo' (invalid_client)")) == 1
        assert requests.get(f"{oidc_hub.url}/hub/api/", timeout=10).status_code == 200
        page.context.close()
    finally:
        provider.add_client(
            CLIENT_ID, oidc_hub.client_secret, [f"{oidc_hub.url}/hub/oauth_callback"], access_token_ttl=ACCESS_TOKEN_TTL
        )


def test_a_provider_that_is_down_gives_a_page_saying_so_and_the_hub_keeps_serving(oidc_hub, provider, browser):
    provider.stop()
    page = browser.new_context().new_page()
    response = page.goto(f"{oidc_hub.url}/hub/oauth_login")
    assert response.status == 503
    assert f"Login is unavailable: the identity provider {provider.issuer} does not answer." in page.content()
    assert len(log_lines(oidc_hub, "OIDC login unavailable: discovery at")) == 1
    assert requests.get(f"{oidc_hub.url}/hub/api/", timeout=10).status_code == 200
    page.context.close()
    provider.start()
    assert log_in(browser, oidc_hub, "bob").url.startswith(oidc_hub.url)
