"""JupyterHub 6.1: a token's scopes leave out what its owner's groups were shared.

`scopes.get_scopes_for(token)` intersects the token's scopes with its owner's roles and with the
shares made with the owner by name (`User.shared_with_me`), but not with the shares made with the
owner's groups, which the same function counts for the user itself (`User.all_shared_with_me`).
So a member of a group a server is shared with passes the hub's OAuth page, and then the server
refuses each of their requests with 403 (the hub logs "discarding scopes
[access:servers!server=...]"). `include_group_shares_in_token_scopes` wraps the function: a user's
token also gets what its owner's groups' shares grant, as if the loop read `all_shared_with_me`.
The hub looks a token's scopes up at each request, so removing a user from the group takes their
access away at their next lookup, as for a share by name.
"""

import sqlalchemy as sa
from jupyterhub import orm, scopes
from jupyterhub.apihandlers import base as apihandlers_base

PRIVATE_NAMES = ("jupyterhub.scopes:_intersect_expanded_scopes",)
# Marks the wrapper, so a second call (a config file loaded twice) does not wrap it again.
WRAPPED = "_sciencelab_group_shares"


def group_share_scopes(user: orm.User) -> frozenset[str]:
    """The scopes the shares with `user`'s groups grant, as stored (`access:servers!server=alice/x`)."""
    return frozenset(scope for group in user.groups for share in group.shared_with_me for scope in share.scopes)


def token_scopes_with_group_shares(get_scopes_for):
    """`get_scopes_for`, giving a user's token the scopes of its owner's groups' shares too."""

    def get_scopes_for_with_group_shares(orm_object):
        granted = get_scopes_for(orm_object)
        if not isinstance(orm_object, orm.APIToken) or orm_object.user is None:
            return granted
        shared = group_share_scopes(orm_object.user)
        if not shared:
            return granted
        if "inherit" in orm_object.scopes:
            return granted | shared
        # ref: https://github.com/jupyterhub/jupyterhub/blob/6.1.1/jupyterhub/scopes.py#L383-L418
        # (what a token asks for: its own scopes, the access scope of the client that issued it,
        # reduced; then intersected with what the owner holds, which reads only direct shares)
        asked = set(
            scopes.expand_scopes(set(orm_object.scopes), owner=orm_object.user, oauth_client=orm_object.oauth_client)
        )
        if orm_object.client_id != "jupyterhub":
            asked |= scopes.access_scopes(orm_object.oauth_client)
        extra = scopes._intersect_expanded_scopes(
            scopes.reduce_scopes(asked), shared, db=sa.inspect(orm_object).session
        )
        return granted | extra

    setattr(get_scopes_for_with_group_shares, WRAPPED, True)
    return get_scopes_for_with_group_shares


def include_group_shares_in_token_scopes():
    """Give tokens their owners' group shares in this hub process (once, however often called)."""
    if getattr(scopes.get_scopes_for, WRAPPED, False):
        return
    scopes.get_scopes_for = token_scopes_with_group_shares(scopes.get_scopes_for)
    # The token models of the REST API list the same scopes (it imported the function by name).
    apihandlers_base.get_scopes_for = scopes.get_scopes_for


def canary():
    """Fails, naming the symbol, when JupyterHub's token scopes no longer behave as this module expects."""
    from jupyterhub import roles

    db = orm.new_session_factory("sqlite:///:memory:")()
    for role in roles.get_default_roles():
        roles.create_role(db, role)
    alice, carol = orm.User(name="alice"), orm.User(name="carol")
    db.add_all([alice, carol])
    db.commit()
    for user in (alice, carol):
        roles.assign_default_roles(db, user)
    server = orm.Spawner(name="x", user=alice)
    client = orm.OAuthClient(identifier="jupyterhub-user-alice-x", spawner=server)
    group = orm.Group(name="lab", users=[carol])
    db.add_all([server, client, group])
    db.commit()
    orm.Share.grant(db, server, group)
    token = orm.APIToken.find(
        db, orm.APIToken.new(user=carol, scopes=["read:users:name!user"], client_id=client.identifier)
    )
    access = "access:servers!server=alice/x"
    assert access in token_scopes_with_group_shares(scopes.get_scopes_for)(token), (
        "jupyterhub.scopes._intersect_expanded_scopes (or expand_scopes, access_scopes): "
        "a group share no longer reaches a token through them"
    )
    db.close()
