"""`configure_sciencelab` and its pure parts: the roles, and the scopes of the servers' tokens."""

import pytest
from traitlets.config import Config

from sciencelab_spawner.hub_config import configure_sciencelab, make_roles, make_server_token_scopes


def test_users_reach_the_sciencelab_service_and_the_services_their_servers_call():
    admin_roles = [
        {"name": "user", "scopes": ["self", "read:groups"]},
        {"name": "auditors", "scopes": ["read:users"], "groups": ["audit"]},
    ]
    assert make_roles(admin_roles, ["dask-gateway"]) == [
        {
            "name": "user",
            "scopes": [
                "self",
                "read:groups",
                "access:services!service=sciencelab",
                "access:services!service=dask-gateway",
                "read:users:name",
                "read:groups:name",
                "shares!user",
            ],
        },
        {"name": "auditors", "scopes": ["read:users"], "groups": ["audit"]},
        {
            "name": "sciencelab-service",
            "description": "What the ScienceLab hub service reads, and the servers it stops.",
            "scopes": [
                "list:users",
                "read:users:groups",
                "read:users:activity",
                "read:servers",
                "admin:server_state",
                "delete:servers",
            ],
            "services": ["sciencelab"],
        },
    ]
    user_role = {
        "name": "user",
        "scopes": ["self", "access:services!service=sciencelab", "read:users:name", "read:groups:name"],
    }
    # Only members of the sharing groups may share; every user may look names up.
    assert make_roles([], sharing_groups=["physics"])[-2:] == [
        user_role,
        {
            "name": "sciencelab-sharing",
            "description": "Who may share their servers (ScienceLab's sharing_groups).",
            "scopes": ["shares!user"],
            "groups": ["physics"],
        },
    ]
    assert make_roles([], sharing_groups=[])[-1] == user_role


def test_server_tokens_keep_jupyterhubs_server_role_and_reach_the_named_services():
    share_scopes = ["shares!server", "users:shares!user", "read:users:name", "read:groups:name"]
    assert make_server_token_scopes(None, ["dask-gateway"]) == [
        "users:activity!user",
        "access:servers!server",
        "access:services!service=dask-gateway",
        *share_scopes,
    ]
    # The admin's own list is kept, without a second copy of a scope it has.
    assert make_server_token_scopes(["inherit", "access:services!service=dask-gateway"], ["dask-gateway"]) == [
        "inherit",
        "access:services!service=dask-gateway",
        *share_scopes,
    ]


def test_configure_sciencelab_grants_the_server_services():
    c = Config()
    c.JupyterHub.services = [{"name": "dask-gateway", "api_token": "secret"}]
    configure_sciencelab(c, profiles=[{"slug": "cpu", "display_name": "CPU"}], server_services=["dask-gateway"])
    assert [s["name"] for s in c.JupyterHub.services] == ["dask-gateway", "sciencelab"]
    # Servers also ask the sciencelab service for their session's deadline.
    assert c.Spawner.server_token_scopes == [
        "users:activity!user",
        "access:servers!server",
        "access:services!service=sciencelab",
        "access:services!service=dask-gateway",
        "shares!server",
        "users:shares!user",
        "read:users:name",
        "read:groups:name",
    ]
    plain = Config()
    configure_sciencelab(plain, profiles=[{"slug": "cpu", "display_name": "CPU"}])
    assert plain.Spawner.server_token_scopes == [
        "users:activity!user",
        "access:servers!server",
        "access:services!service=sciencelab",
        "shares!server",
        "users:shares!user",
        "read:users:name",
        "read:groups:name",
    ]


@pytest.mark.parametrize(
    ("server_services", "scopes", "message"),
    [
        (
            "dask-gateway",
            None,
            "configure_sciencelab: server_services must be a list of service names, got the "
            "string 'dask-gateway'; write ['dask-gateway']",
        ),
        (
            ["dask-gateway"],
            lambda spawner: ["inherit"],
            "configure_sciencelab: Spawner.server_token_scopes is a function; add "
            "access:services!service=sciencelab, access:services!service=dask-gateway to what it returns",
        ),
    ],
)
def test_server_services_it_cannot_apply_are_refused_with_what_to_do(server_services, scopes, message):
    c = Config()
    if scopes is not None:
        c.Spawner.server_token_scopes = scopes
    with pytest.raises(ValueError) as error:
        configure_sciencelab(c, profiles=[{"slug": "cpu", "display_name": "CPU"}], server_services=server_services)
    assert str(error.value) == message


def test_the_service_listens_where_the_proxy_reaches_it():
    beside_the_proxy = Config()
    configure_sciencelab(beside_the_proxy, profiles=[{"slug": "cpu", "display_name": "CPU"}], service_port=10101)
    assert beside_the_proxy.JupyterHub.services[-1]["url"] == "http://127.0.0.1:10101"
    # The Helm chart: the proxy is a pod of its own and reaches the hub pod's IP.
    in_a_pod = Config()
    configure_sciencelab(
        in_a_pod, profiles=[{"slug": "cpu", "display_name": "CPU"}], service_port=10101, service_host="10.1.2.3"
    )
    assert in_a_pod.JupyterHub.services[-1]["url"] == "http://10.1.2.3:10101"
