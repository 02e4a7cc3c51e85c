"""The user's identity-provider token, offered to their server as a file the hub keeps fresh.

With `SciencelabOIDCAuthenticator.server_token` set, a server that exchanges the user's token for
something else (S3 STS credentials, an HTCondor or SLURM token) reads it from the file named in
SERVER_TOKEN_ENV: written by the spawner before the server starts, rewritten by the hub after each
refresh that renewed it. Only the path is in the server's environment, never the token.
"""

import logging
import os
from pathlib import Path

SERVER_TOKEN_ENV = "SCIENCELAB_TOKEN_FILE"


def write_private_file(path: Path, text: str, uid: int | None = None, gid: int | None = None):
    """Replace `path` with `text`, readable by its owner only (`uid`:`gid` when given, else this
    process's), so that a reader sees the old token or the new one, never half of one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if uid is not None:
        os.chown(path.parent, uid, gid if gid is not None else -1)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if uid is not None:
            os.fchown(descriptor, uid, gid if gid is not None else -1)
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)
    os.replace(partial, path)


async def offer_server_token(user, token: str | None, log: logging.Logger):
    """Give `user`'s running servers their renewed `token`, where it changed (JupyterHub's `User`; a
    spawner without ScienceLab's `refresh_server_token` is skipped). A server's failure is logged in
    one line and the others still get it: the refresh that renewed the token goes on."""
    if not token:
        return
    for spawner in list(user.spawners.values()):
        if not spawner.active or getattr(spawner, "server_token", token) == token:
            continue
        try:
            await spawner.refresh_server_token(token)
        except Exception as error:
            log.warning("Could not renew the token file of %s's server %r: %s", user.name, spawner.name, error)
