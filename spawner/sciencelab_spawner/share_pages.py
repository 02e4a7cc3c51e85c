"""The hub's home page lists the servers others shared with the user, directly or through one of
their groups (JupyterHub's own page lists only the user's servers), with a link to each.

`make_shared_servers` is pure; `shared_servers_of` reads JupyterHub's share records, which
`c.JupyterHub.template_vars["sciencelab_shared"]` hands to `templates/home.html`.
"""

from collections.abc import Iterable
from urllib.parse import quote


def make_shared_servers(shares: Iterable[tuple[str, str, bool, str | None]]) -> list[dict]:
    """One entry per server from (owner, server name, running, group it came through or None)
    tuples; a server shared both directly and through groups is listed once, directly."""
    servers: dict[tuple[str, str], dict] = {}
    for owner, name, running, group in shares:
        entry = servers.setdefault(
            (owner, name),
            {
                "owner": owner,
                "name": name,
                "path": f"user/{quote(owner, safe='')}/{quote(name, safe='')}/"
                if name
                else f"user/{quote(owner, safe='')}/",
                "running": running,
                "through": group,
            },
        )
        if group is None:
            entry["through"] = None
    return [servers[key] for key in sorted(servers)]


def shared_servers_of(user) -> list[dict]:
    """`template_vars` callable: the servers shared with `user` (a JupyterHub `User`, or None)."""
    if user is None:
        return []
    return make_shared_servers(
        (
            share.owner.name,
            share.spawner.name,
            share.spawner.server is not None,
            share.group.name if share.group else None,
        )
        for share in user.orm_user.all_shared_with_me
        if share.owner is not None and share.spawner is not None
    )
