"""Revocation that takes effect (share_watch.py on the hub, guest_access.py in the server): on a
real demo hub, a guest refused a moment ago gets in within 5 s of a share, and a guest whose share
is revoked, or who leaves a shared group, loses HTTP and every open WebSocket (kernel, events,
collaborative document) within 5 s, each closed with a message.

The servers run with the guest cache and the sweep at 300 s, so only the hub's notice can meet 5 s.
"""

import json
import textwrap
import time

import pytest

from sciencelab.guest_access import (
    ACCESS_KEY_ENV as SERVER_ACCESS_KEY_ENV,
)
from sciencelab.guest_access import (
    ACCESS_REVOKED_EVENT,
    DOCUMENT_CLOSE_CODE,
    MAX_CLOSE_REASON_BYTES,
    SOCKET_CLOSE_CODE,
    check_push_signature,
    make_close_reason,
    make_revoked_message,
)
from sciencelab.guest_access import (
    SIGNATURE_HEADER as SERVER_SIGNATURE_HEADER,
)
from sciencelab_spawner.share_watch import (
    ACCESS_KEY_ENV,
    SIGNATURE_HEADER,
    make_access_key,
    make_push_signature,
)

from .demo_hub import DemoHub
from .guest_sockets import close_summary, contents_status, open_guest_sockets, seconds_until

pytestmark = pytest.mark.hub

LIMIT = 5.0  # seconds: the bound for every cut-off and grant
SERVER = "shared"
SHARES = f"/hub/api/shares/alice/{SERVER}"
# The servers trust a guest's cached answer and sweep their sockets only every 300 s: what happens
# within 5 s is the hub's notice.
SLOW_SAFETY_NETS = ["--GuestAccess.guest_cache_seconds=300", "--GuestAccess.sweep_interval_seconds=300"]
# Users may share and look names up (hub_config.make_roles gives these too; kept here so that this
# test does not depend on the demo's defaults).
SHARING_SCOPES = ["shares!user", "read:users:name", "read:groups:name"]


def revocation_hub_config(server_args: list[str]) -> str:
    """The extra configuration of a demo hub whose users may share, with `server_args` for every server."""
    return textwrap.dedent(f"""
        from sciencelab_spawner.hub_config import make_roles
        c.JupyterHub.load_roles = make_roles([{{"name": "user", "scopes": ["self", *{SHARING_SCOPES!r}]}}])
        c.Spawner.args = {server_args!r}
    """)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A demo hub (share watch installed by configure_sciencelab) with alice's collaborative server
    `shared` running; the server and the hub are stopped afterwards."""
    hub = DemoHub(tmp_path_factory.mktemp("revocation-hub"), extra_config=revocation_hub_config(SLOW_SAFETY_NETS))
    hub.start()
    try:
        started = hub.spawn("alice", {"profile": "collab", "collaborative": True}, SERVER)
        assert started.status_code in (201, 202), hub.log_tail()
        yield hub
        hub.check_log()
    finally:
        hub.stop_server("alice", SERVER)
        hub.stop()
        print(f"revocation hub log: {hub.log_path}")


def grant(hub: DemoHub, **grantee) -> float:
    """Share alice's server with `grantee` ({user: name} or {group: name}); returns when (monotonic)."""
    response = hub.request("POST", SHARES, "alice", json=grantee)
    assert response.status_code == 200, response.text
    return time.monotonic()


def assert_cut_off(hub: DemoHub, guest: str, sockets, revoked: float, what: str):
    """`guest` gets 403 and every one of `sockets` is closed with a message, within LIMIT of `revoked`."""
    http = seconds_until(lambda: contents_status(hub, hub.token(guest), "alice", SERVER) == 403, revoked, LIMIT)
    closed = {socket.name: socket.wait_closed(max(0.0, revoked + LIMIT - time.monotonic())) for socket in sockets}
    print(f"\n{what}: HTTP 403 after {http if http is None else f'{http:.2f}'} s")
    for socket in sockets:
        after = None if socket.closed_at is None else socket.closed_at - revoked
        print(
            f"  {socket.name} socket closed after {after if after is None else f'{after:.2f}'} s: {close_summary(socket)}"
        )
    assert http is not None, f"{guest} still reaches the server {LIMIT} s after {what}:\n{hub.log_tail()}"
    assert all(closed.values()), f"sockets still open {LIMIT} s after {what}: {closed}\n{hub.log_tail()}"
    for socket in sockets:
        document = socket.name == "document room"
        assert socket.close_code == (DOCUMENT_CLOSE_CODE if document else SOCKET_CLOSE_CODE), close_summary(socket)
        assert socket.close_reason == make_close_reason(document, "alice", SERVER)


def test_a_guest_refused_a_moment_ago_gets_in_and_a_revoked_one_loses_every_socket(hub):
    assert contents_status(hub, hub.token("bob"), "alice", SERVER) == 403  # the server caches this refusal
    granted = grant(hub, user="bob")
    allowed = seconds_until(lambda: contents_status(hub, hub.token("bob"), "alice", SERVER) == 200, granted, LIMIT)
    print(f"\nshare with bob: HTTP 200 after {allowed if allowed is None else f'{allowed:.2f}'} s")
    assert allowed is not None, f"bob is still refused {LIMIT} s after the share:\n{hub.log_tail()}"

    sockets = open_guest_sockets(hub, "bob", "alice", SERVER, document=True)
    # The owner's sockets are nobody's business: they stay open.
    (owner_socket,) = (
        s for s in open_guest_sockets(hub, "alice", "alice", SERVER, document=False) if s.name == "events"
    )
    try:
        # DELETE /hub/api/shares/alice/shared: one bulk delete of every share of the server.
        response = hub.request("DELETE", SHARES, "alice")
        assert response.status_code == 204, response.text
        assert_cut_off(hub, "bob", sockets, time.monotonic(), "the owner revoked every share")
        # Before the sockets closed, bob's lab heard why on his event socket (it shows it).
        (events,) = (s for s in sockets if s.name == "events")
        assert {
            "schema_id": ACCESS_REVOKED_EVENT,
            "user": "bob",
            "message": make_revoked_message("alice", SERVER),
        }.items() <= json.loads(events.messages[-1]).items(), events.messages
        assert owner_socket.closed_at is None
        assert contents_status(hub, hub.token("alice"), "alice", SERVER) == 200
    finally:
        for socket in [*sockets, owner_socket]:
            socket.close()


def test_revoking_one_guest_cuts_off_that_guest(hub):
    grant(hub, user="bob")
    assert seconds_until(
        lambda: contents_status(hub, hub.token("bob"), "alice", SERVER) == 200, time.monotonic(), LIMIT
    )
    sockets = open_guest_sockets(hub, "bob", "alice", SERVER, document=False)
    try:
        # PATCH without scopes removes bob's share alone (an ORM delete).
        response = hub.request("PATCH", SHARES, "alice", json={"user": "bob"})
        assert response.status_code == 200, response.text
        assert_cut_off(hub, "bob", sockets, time.monotonic(), "the owner revoked bob's share")
    finally:
        for socket in sockets:
            socket.close()


def test_a_member_of_a_shared_group_gets_in_and_loses_access_when_removed(hub):
    assert hub.request("POST", "/hub/api/groups/lab", "admin").status_code in (201, 409)
    added = hub.request("POST", "/hub/api/groups/lab/users", "admin", json={"users": ["bob"]})
    assert added.status_code == 200, added.text
    granted = grant(hub, group="lab")
    allowed = seconds_until(lambda: contents_status(hub, hub.token("bob"), "alice", SERVER) == 200, granted, LIMIT)
    print(f"\nshare with group lab: bob gets HTTP 200 after {allowed if allowed is None else f'{allowed:.2f}'} s")
    assert allowed is not None, f"bob, in the shared group lab, is refused:\n{hub.log_tail()}"
    sockets = open_guest_sockets(hub, "bob", "alice", SERVER, document=True)
    try:
        removed = hub.request("DELETE", "/hub/api/groups/lab/users", "admin", json={"users": ["bob"]})
        assert removed.status_code == 200, removed.text
        assert_cut_off(hub, "bob", sockets, time.monotonic(), "the admin removed bob from the shared group")
    finally:
        for socket in sockets:
            socket.close()
        hub.request("DELETE", SHARES, "alice")


def test_the_server_reads_the_key_and_signature_the_hub_makes():
    assert (SERVER_ACCESS_KEY_ENV, SERVER_SIGNATURE_HEADER) == (ACCESS_KEY_ENV, SIGNATURE_HEADER)
    key = make_access_key(b"cookie-secret", "alice", "shared")
    assert key != make_access_key(b"cookie-secret", "alice", "") != make_access_key(b"other", "alice", "shared")
    body = b"{}"
    now = 1_800_000_000
    header = make_push_signature(key, now, body)
    assert check_push_signature(key, header, body, now + 30, max_skew=60) is None
    assert check_push_signature(key, header, body, now + 61, max_skew=60) == (
        f"{SIGNATURE_HEADER}: signed 61 s ago, more than 60 s"
    )
    other = make_access_key(b"cookie-secret", "alice", "other")
    assert (
        check_push_signature(other, header, body, now, 60) == f"{SIGNATURE_HEADER}: not signed with this server's key"
    )
    assert (
        check_push_signature(key, header, b'{"x": 1}', now, 60)
        == f"{SIGNATURE_HEADER}: not signed with this server's key"
    )
    assert check_push_signature(key, "", body, now, 60) == f"{SIGNATURE_HEADER}: no t=<unix seconds>"
    assert check_push_signature("", header, body, now, 60).startswith("this server has no access key")


@pytest.mark.parametrize("owner", ["alice", "a" * 200])
def test_close_messages_fit_a_close_frame(owner):
    document = json.loads(make_close_reason(True, owner, "shared"))
    assert document["reason"] == "unknown_session" and document["reloadable"] is False
    assert document["errorReason"].startswith(f"Your access to {owner[:20]}")
    for is_document in (True, False):
        assert len(make_close_reason(is_document, owner, "shared").encode()) <= MAX_CLOSE_REASON_BYTES
    assert make_close_reason(False, "alice", "") == "access to alice revoked"
