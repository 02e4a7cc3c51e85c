"""Revocation that takes effect: the hub tells a shared server at once when who may use it changed.

JupyterHub decides at each lookup who may use a server, but a server caches those answers 300 s
and checks a WebSocket only when it opens. ScienceLab's server extension (`sciencelab.guest_access`)
drops its guests' answers and asks the hub again about every connected guest when the hub sends it
a notice; this module sends that notice, right after the hub's database committed a change:

- a share made, changed or revoked, by the owner, a share link accepted, a guest leaving
  (`orm.Share` inserts, updates, deletes, and the bulk delete of `DELETE /hub/api/shares/...`);
- a user added to or removed from a group, or deleted (every server shared with their groups).

Nothing runs while nothing changes: no polling, no cost per server. A change costs one POST per
affected running server, and that server one lookup per connected guest.

Authentication of the notice. Each server has its own key, `make_access_key(cookie secret, owner,
server)`: HMAC-SHA256 of the server's name under the hub's cookie secret, so a server's key tells
nothing about the secret or another server's key, and the hub derives it again after a restart
without storing it. The spawner hands it over in ACCESS_KEY_ENV, as the server's API token (on
Kubernetes from the server's token Secret, never a literal in the pod). The hub signs each notice
(`make_push_signature`) with its time; the server accepts it within a minute. A notice carries no
data: the worst a stolen key can do is make one server ask the hub about its guests.
"""

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterable

from jupyterhub import orm
from jupyterhub.utils import make_ssl_context, url_path_join
from sqlalchemy import event, select
from sqlalchemy.orm import Session, object_session
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.ioloop import IOLoop

from .compat.jupyterhub import include_group_shares_in_token_scopes

# The server reads these (sciencelab/guest_access.py); tests/test_share_revocation.py checks both agree.
ACCESS_KEY_ENV = "SCIENCELAB_ACCESS_KEY"
SIGNATURE_HEADER = "X-Sciencelab-Signature"
ACCESS_CHANGED_PATH = "sciencelab/api/access-changed"
# A server that does not answer within this is left to its own sweep (GuestAccess.sweep_interval_seconds).
PUSH_TIMEOUT = 10.0
# session.info: what the transaction touched, {"spawners": {id}, "groups": {id}}
PENDING = "sciencelab_access_changes"


def make_access_key(cookie_secret: bytes, owner: str, server: str) -> str:
    """The key `owner`'s server `server` ("" for the default one) checks the hub's notices with."""
    return hmac.new(cookie_secret, f"sciencelab-access-key\0{owner}/{server}".encode(), hashlib.sha256).hexdigest()


def make_push_signature(key: str, signed_at: int, body: bytes) -> str:
    """The SIGNATURE_HEADER of a notice with `body`, signed at `signed_at` (unix seconds)."""
    digest = hmac.new(key.encode(), f"{signed_at}\n".encode() + body, hashlib.sha256).hexdigest()
    return f"t={signed_at},sha256={digest}"


def access_key_for(spawner) -> str:
    """ACCESS_KEY_ENV's value for `spawner`'s server (a callable value of `Spawner.environment`)."""
    return make_access_key(spawner.user.settings["cookie_secret"], spawner.user.name, spawner.name)


def install_share_watch():
    """Watch this process's JupyterHub database sessions for changes of who may use which server,
    and give tokens their owners' group shares (compat/jupyterhub.py). Once, however often called;
    the notices go out only in a running hub."""
    include_group_shares_in_token_scopes()
    if event.contains(Session, "after_commit", _send_notices):
        return
    for name in ("after_insert", "after_update", "after_delete"):
        event.listen(orm.Share, name, _share_changed)
    for collection in (orm.Group.users, orm.User.groups):
        event.listen(collection, "append", _membership_changed)
        event.listen(collection, "remove", _membership_changed)
    event.listen(orm.User, "before_delete", _user_deleted)
    event.listen(Session, "do_orm_execute", _shares_bulk_deleted)
    event.listen(Session, "after_commit", _send_notices)
    event.listen(Session, "after_rollback", _forget_changes)


def _pending(session: Session | None) -> dict[str, set[int]]:
    if session is None:
        return {"spawners": set(), "groups": set()}  # an object of no session: nothing is committed
    return session.info.setdefault(PENDING, {"spawners": set(), "groups": set()})


def _share_changed(mapper, connection, share: orm.Share):
    _pending(object_session(share))["spawners"].add(share.spawner_id)


def _membership_changed(target, value, initiator):
    group = target if isinstance(target, orm.Group) else value
    if group.id is not None:  # a new group has no shares yet
        _pending(object_session(target))["groups"].add(group.id)


def _user_deleted(mapper, connection, user: orm.User):
    # The database drops their memberships without collection events; their shares go one by one.
    _pending(object_session(user))["groups"].update(group.id for group in user.groups)


def _shares_bulk_deleted(execute_state):
    # `DELETE /hub/api/shares/{owner}/{server}` deletes with one statement: no per-share events.
    if not execute_state.is_delete or execute_state.bind_mapper is not orm.Share.__mapper__:
        return
    where = execute_state.statement.whereclause
    affected = select(orm.Share.spawner_id) if where is None else select(orm.Share.spawner_id).where(where)
    _pending(execute_state.session)["spawners"].update(execute_state.session.execute(affected).scalars())


def _forget_changes(session: Session):
    session.info.pop(PENDING, None)


def _send_notices(session: Session):
    changes = session.info.pop(PENDING, None)
    if not changes or not (changes["spawners"] or changes["groups"]):
        return
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return  # a script or test using JupyterHub's database: no servers to tell
    IOLoop.current().add_callback(notify_servers, JupyterHub.instance(), changes["spawners"], changes["groups"])


async def notify_servers(app, spawner_ids: Iterable[int], group_ids: Iterable[int]):
    """Tell the running servers among `spawner_ids` and those shared with `group_ids` that access changed."""
    spawner_ids = set(spawner_ids)
    if group_ids:
        shared = select(orm.Share.spawner_id).where(orm.Share.group_id.in_(set(group_ids)))
        spawner_ids.update(app.db.execute(shared).scalars())
    targets = []
    for orm_spawner in app.db.query(orm.Spawner).filter(orm.Spawner.id.in_(spawner_ids)):
        if orm_spawner.server is None:
            continue
        spawner = app.users[orm_spawner.user_id].spawners.get(orm_spawner.name)
        if spawner is not None and spawner.ready:
            targets.append(spawner)
    ssl_options = None
    if app.internal_ssl:
        ssl_options = make_ssl_context(app.internal_ssl_key, app.internal_ssl_cert, cafile=app.internal_ssl_ca)
    await asyncio.gather(*(notify_server(app, spawner, ssl_options) for spawner in targets))


async def notify_server(app, spawner, ssl_options):
    owner, server = spawner.user.name, spawner.name
    body = b"{}"
    key = make_access_key(app.cookie_secret, owner, server)
    request = HTTPRequest(
        url_path_join(spawner.server.url, ACCESS_CHANGED_PATH),
        method="POST",
        body=body,
        headers={SIGNATURE_HEADER: make_push_signature(key, int(time.time()), body)},
        request_timeout=PUSH_TIMEOUT,
        ssl_options=ssl_options,
    )
    started = time.monotonic()
    try:
        await AsyncHTTPClient().fetch(request)
    except Exception as error:
        app.log.warning("Could not tell %s's server %r that access to it changed: %s", owner, server, error)
    else:
        app.log.info(
            "Told %s's server %r that access to it changed (%.0f ms)",
            owner,
            server,
            1000 * (time.monotonic() - started),
        )
