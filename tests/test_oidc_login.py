"""The pure part of the OIDC login (`sciencelab_spawner.oidc_login`) and its hub configuration."""

import pytest
from traitlets.config import Config

from sciencelab_spawner.hub_config import configure_sciencelab, make_oidc_login
from sciencelab_spawner.oidc_login import (
    OidcConfigurationError,
    OidcEndpoints,
    discovery_url,
    groups_from_claim,
    is_due_for_renewal,
    make_default_scope,
    make_not_allowed_message,
    make_unavailable_message,
    resolve_endpoints,
)

ISSUER = "https://iam.example.org/"
DISCOVERY = {
    "issuer": "https://iam.example.org/",
    "authorization_endpoint": "https://iam.example.org/authorize",
    "token_endpoint": "https://iam.example.org/token",
    "userinfo_endpoint": "https://iam.example.org/userinfo",
    "jwks_uri": "https://iam.example.org/jwk",
}
PROFILES = [{"slug": "cpu", "display_name": "CPU", "default": True}]


def test_the_discovery_document_lies_under_the_issuer_with_or_without_its_slash():
    assert discovery_url(ISSUER) == "https://iam.example.org/.well-known/openid-configuration"
    assert discovery_url("http://127.0.0.1:5556/realms/lab") == (
        "http://127.0.0.1:5556/realms/lab/.well-known/openid-configuration"
    )


def test_the_endpoints_come_from_the_issuers_own_discovery_document():
    assert resolve_endpoints(ISSUER, DISCOVERY) == OidcEndpoints(
        authorize_url="https://iam.example.org/authorize",
        token_url="https://iam.example.org/token",
        userinfo_url="https://iam.example.org/userinfo",
    )
    assert resolve_endpoints("https://iam.example.org", DISCOVERY).token_url == "https://iam.example.org/token"


@pytest.mark.parametrize(
    ("discovery", "message"),
    [
        (["not", "an", "object"], "https://iam.example.org/.well-known/openid-configuration is not a JSON object: "),
        (
            {**DISCOVERY, "issuer": "https://other.example.org/"},
            "names the issuer 'https://other.example.org/', not 'https://iam.example.org/': set the issuer to",
        ),
        ({**DISCOVERY, "token_endpoint": None}, "openid-configuration: token_endpoint is None, not an http(s) URL"),
        (
            {**DISCOVERY, "userinfo_endpoint": "javascript:alert(1)"},
            "userinfo_endpoint is 'javascript:alert(1)', not an http(s) URL",
        ),
        ({**DISCOVERY, "authorization_endpoint": "x" * 500}, "authorization_endpoint is 'xxxxxxxx"),
    ],
)
def test_a_discovery_document_that_cannot_configure_the_login_is_refused_naming_the_field(discovery, message):
    with pytest.raises(OidcConfigurationError) as refused:
        resolve_endpoints(ISSUER, discovery)
    assert message in str(refused.value)
    assert len(str(refused.value)) < 250  # a long value is cut


@pytest.mark.parametrize(
    ("claims", "claim", "groups"),
    [
        ({"groups": ["gpu-users", "cms"]}, "groups", {"gpu-users", "cms"}),
        ({"wlcg.groups": ["/gpu-users", "/cms/higgs"]}, "wlcg.groups", {"gpu-users", "cms/higgs"}),
        ({"groups": "gpu-users"}, "groups", {"gpu-users"}),
        ({"groups": []}, "groups", set()),
        ({"groups": ["/", "", 7, None, "ok"]}, "groups", {"ok"}),
        ({"groups": {"not": "a list"}}, "groups", set()),
        ({"groups": ["gpu-users"]}, "wlcg.groups", None),
        ({}, "groups", None),
    ],
)
def test_groups_come_from_the_claim_with_wlcg_paths_as_plain_names_and_none_when_it_is_absent(claims, claim, groups):
    found = groups_from_claim(claims, claim)
    assert (found if found is None else set(found)) == groups


def test_the_default_scope_asks_for_a_refresh_token_and_for_wlcg_groups_only_when_they_are_the_claim():
    assert make_default_scope("groups") == ["openid", "profile", "email", "offline_access"]
    assert make_default_scope("wlcg.groups") == ["openid", "profile", "email", "offline_access", "wlcg.groups"]


def test_a_user_in_no_allowed_group_reads_which_groups_admit_them_and_what_they_were_found_in():
    allowed = {"gpu-users", "cms"}
    assert make_not_allowed_message(None, "groups", allowed) == (
        "You are not allowed on this hub: it admits members of cms, gpu-users, and your identity provider sent "
        "no 'groups' claim, so you are in no group here. If you should be, ask your hub admin (or your group's "
        "manager) to add you at the identity provider, then log in again."
    )
    assert "and your identity provider lists you in no group." in make_not_allowed_message(frozenset(), "g", allowed)
    assert "lists you in atlas, lhcb." in make_not_allowed_message(frozenset({"lhcb", "atlas"}), "g", allowed)
    assert make_not_allowed_message(frozenset(), "g", set()).startswith(
        "You are not allowed on this hub: it admits only the users it lists, and your identity provider lists "
        "you in no group."
    )


def test_login_unavailable_says_it_is_not_the_users_fault():
    assert make_unavailable_message(ISSUER, "does not answer") == (
        "Login is unavailable: the identity provider https://iam.example.org/ does not answer. Nothing is wrong "
        "with your account; try again in a few minutes, and if this lasts, tell your hub admin this message."
    )


def test_configure_sciencelab_sets_the_oidc_authenticator_from_its_arguments():
    c = Config()
    configure_sciencelab(
        c,
        profiles=PROFILES,
        login="oidc",
        issuer=ISSUER,
        client_id="sciencelab-hub",
        client_secret_file="/etc/sciencelab/oidc/client-secret",
        groups_claim="wlcg.groups",
        allowed_groups=["gpu-users", "cms"],
        admin_groups=["hub-admins"],
    )
    assert c.JupyterHub.authenticator_class == "sciencelab_spawner.oidc_login.SciencelabOIDCAuthenticator"
    assert dict(c.SciencelabOIDCAuthenticator) == {
        "issuer": ISSUER,
        "client_id": "sciencelab-hub",
        "client_secret_file": "/etc/sciencelab/oidc/client-secret",
        "groups_claim": "wlcg.groups",
        "allowed_groups": {"gpu-users", "cms"},
        "admin_groups": {"hub-admins"},
    }


def test_without_login_the_authenticator_is_left_as_the_admin_set_it():
    c = Config()
    c.JupyterHub.authenticator_class = "dummy"
    configure_sciencelab(c, profiles=PROFILES)
    assert c.JupyterHub.authenticator_class == "dummy"
    assert "SciencelabOIDCAuthenticator" not in c


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"issuer": None, "client_id": "hub"}, "login='oidc' needs issuer"),
        ({"issuer": ISSUER, "client_id": ""}, "login='oidc' needs client_id"),
        ({"issuer": None, "client_id": None}, "login='oidc' needs issuer and client_id"),
        ({"issuer": ISSUER, "client_id": "hub", "allowed_groups": "gpu-users"}, "allowed_groups must be a list"),
    ],
)
def test_an_incomplete_oidc_login_stops_the_hub_naming_what_is_missing(arguments, message):
    with pytest.raises(ValueError, match=message):
        make_oidc_login(client_secret_file=None, **arguments)


def test_an_unknown_login_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="login 'saml' is not one of: None, 'oidc'"):
        configure_sciencelab(Config(), profiles=PROFILES, login="saml")


@pytest.mark.parametrize(
    ("auth_state", "due"),
    [
        ({"refresh_token": "r", "token_response": {"expires_at": 1000 + 61}}, False),
        ({"refresh_token": "r", "token_response": {"expires_at": 1000 + 59}}, True),
        ({"refresh_token": "r", "token_response": {"expires_at": 1000 - 5}}, True),  # expired
        ({"refresh_token": None, "token_response": {"expires_at": 1000 - 5}}, False),  # nothing to renew with
        ({"refresh_token": "r", "token_response": {}}, False),  # the provider gave no expires_in
        ({"refresh_token": "r"}, False),
        (None, False),
    ],
)
def test_an_access_token_is_renewed_within_the_margin_of_its_expiry_when_a_refresh_token_can(auth_state, due):
    assert is_due_for_renewal(auth_state, now=1000, margin=60) is due
