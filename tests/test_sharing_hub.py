"""Sharing a collaborative server through JupyterHub's sharing API, from the server's own relay
(`/sciencelab/api/shares`, `/sciencelab/api/share-codes`) on the demo hub: the owner shares with a
user and a group, makes and revokes a share link, and revokes; guests and servers that are not
collaborative are refused, saying why."""

import pytest
import requests

from sciencelab_spawner.share_pages import make_shared_servers

from .demo_hub import XSRF_FIELD

pytestmark = pytest.mark.hub

SHARED = "/user/alice/together/sciencelab/api"


@pytest.fixture
def alice_servers(demo_hub, alice):
    """alice's collaborative server `together` and her server `alone`, without collaboration."""
    servers = {
        "together": {"profile": "collab", "collaborative": True},
        "alone": {"profile": "collab", "collaborative": False},
    }
    try:
        for server, options in servers.items():
            assert demo_hub.spawn(alice, options, server).status_code in (201, 202), demo_hub.log_tail()
        yield demo_hub
    finally:
        for server in servers:
            demo_hub.stop_server(alice, server)


def test_the_owner_shares_a_collaborative_server_and_nobody_else_manages_it(alice_servers, bob):
    hub = alice_servers
    listing = hub.request("GET", f"{SHARED}/shares", "alice")
    assert listing.status_code == 200, listing.text
    assert listing.json() == {"collaborative": True, "shares": [], "codes": []}

    granted = hub.request("POST", f"{SHARED}/shares", "alice", json={"user": "bob"})
    assert granted.status_code == 201, granted.text
    assert {k: granted.json()[k] for k in ("kind", "name")} == {"kind": "user", "name": "bob"}
    assert hub.request("POST", f"{SHARED}/shares", "alice", json={"group": "gpu-users"}).status_code == 201
    shares = hub.request("GET", f"{SHARED}/shares", "alice").json()["shares"]
    assert sorted((share["kind"], share["name"]) for share in shares) == [("group", "gpu-users"), ("user", "bob")]
    # bob reaches alice's server, and the hub lists it among what is shared with him.
    assert hub.request("GET", "/user/alice/together/api/contents", bob).status_code == 200
    shared_with_bob = hub.request("GET", "/hub/api/users/bob/shared", bob).json()["items"]
    assert [item["server"]["name"] for item in shared_with_bob] == ["together"]

    # A guest may use the server, not manage its shares.
    refused = hub.request("POST", f"{SHARED}/shares", bob, json={"user": "bob"})
    assert (refused.status_code, refused.json()["message"]) == (
        403,
        "sharing: only alice, who owns this server, manages its shares",
    )
    unknown = hub.request("POST", f"{SHARED}/shares", "alice", json={"user": "nobody"})
    assert unknown.status_code == 400 and unknown.json()["message"].startswith("The hub refused: "), unknown.text
    bad = hub.request("POST", f"{SHARED}/shares", "alice", json={"user": "bob", "scopes": ["admin:users"]})
    assert (bad.status_code, bad.json()["message"]) == (
        400,
        "body: {'scopes': ['admin:users'], 'user': 'bob'} is not {\"user\": name} or {\"group\": name}",
    )

    # bob's own lab lists it, and he may leave it.
    assert hub.spawn(bob, {"profile": "cpu"}).status_code in (201, 202), hub.log_tail()
    mine = hub.request("GET", "/user/bob/sciencelab/api/shared-with-me", bob)
    assert mine.status_code == 200, mine.text
    assert [(s["owner"], s["name"], s["through"]) for s in mine.json()["servers"]] == [("alice", "together", None)]
    left = hub.request("DELETE", "/user/bob/sciencelab/api/shared-with-me?owner=alice&server=together", bob)
    assert left.status_code == 204, left.text
    assert [s["name"] for s in hub.request("GET", f"{SHARED}/shares", "alice").json()["shares"]] == ["gpu-users"]

    assert hub.request("POST", f"{SHARED}/shares", "alice", json={"user": "bob"}).status_code == 201
    assert hub.request("DELETE", f"{SHARED}/shares?user=bob", "alice").status_code == 204
    assert [s["name"] for s in hub.request("GET", f"{SHARED}/shares", "alice").json()["shares"]] == ["gpu-users"]
    assert hub.request("DELETE", f"{SHARED}/shares", "alice").status_code == 204
    assert hub.request("GET", f"{SHARED}/shares", "alice").json()["shares"] == []


def test_a_share_link_works_once_accepted_by_a_logged_in_user_and_the_owner_revokes_it(alice_servers, bob):
    hub = alice_servers
    made = hub.request("POST", f"{SHARED}/share-codes", "alice", json={"expires_in": 3600})
    assert made.status_code == 201, made.text
    code = made.json()
    assert code["accept_url"].startswith("/hub/accept-share?code=")
    # Anonymous: the hub asks to log in first.
    anonymous = requests.get(f"{hub.url}{code['accept_url']}", timeout=30, allow_redirects=False)
    assert anonymous.status_code == 302 and "/hub/login" in anonymous.headers["Location"]
    # bob, logged in, accepts it and then reaches the server.
    browser = hub.browser_session(bob)
    page = browser.get(f"{hub.url}{code['accept_url']}", timeout=30)
    assert page.status_code == 200, page.text[:500]
    accepted = browser.post(
        f"{hub.url}/hub/accept-share",
        data={"code": code["accept_url"].split("code=", 1)[1], "_xsrf": XSRF_FIELD.search(page.text).group(1)},
        timeout=30,
        allow_redirects=False,
    )
    assert accepted.status_code in (302, 303), accepted.text[:500]
    home = browser.get(f"{hub.url}/hub/home", timeout=30).text
    assert '<li class="sciencelab-shared-server" data-owner="alice" data-server-name="together">' in home
    assert 'href="/user/alice/together/"' in home
    listing = hub.request("GET", f"{SHARED}/shares", "alice").json()
    assert [(s["kind"], s["name"]) for s in listing["shares"]] == [("user", "bob")]
    assert [(c["id"], c["exchange_count"]) for c in listing["codes"]] == [(code["id"], 1)]
    assert "accept_url" not in listing["codes"][0]  # the hub shows a code once

    assert hub.request("DELETE", f"{SHARED}/share-codes?id={code['id']}", "alice").status_code == 204
    assert hub.request("GET", f"{SHARED}/shares", "alice").json()["codes"] == []
    assert hub.request("DELETE", f"{SHARED}/shares", "alice").status_code == 204


def test_a_server_without_collaboration_cannot_be_shared(alice_servers):
    hub = alice_servers
    for method, path in (("GET", "shares"), ("POST", "shares"), ("POST", "share-codes")):
        refused = hub.request(method, f"/user/alice/alone/sciencelab/api/{path}", "alice", json={"user": "bob"})
        assert (refused.status_code, refused.json()["message"]) == (
            403,
            "sharing: this server's profile runs without real-time collaboration; "
            "start a collaborative profile (or switch collaboration on) to share it",
        )


def test_the_home_page_lists_each_shared_server_once_saying_through_which_group():
    shares = [("carol", "", False, "physics"), ("alice", "x y", True, "physics"), ("alice", "x y", True, None)]
    assert make_shared_servers(shares) == [
        {"owner": "alice", "name": "x y", "path": "user/alice/x%20y/", "running": True, "through": None},
        {"owner": "carol", "name": "", "path": "user/carol/", "running": False, "through": "physics"},
    ]
