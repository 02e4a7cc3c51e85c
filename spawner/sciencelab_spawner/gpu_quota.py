"""GPU quotas: how many GPUs a user, and a group, may hold across all running servers. Pure."""

from collections.abc import Iterable
from dataclasses import dataclass

from .profile_config import Quotas
from .user_options import ForbiddenOptionError


@dataclass(frozen=True)
class GpuHolding:
    """GPUs (or MIG slices) held by one running or starting server."""

    user: str
    server: str
    groups: frozenset[str]
    count: int


def user_gpu_limit(quotas: Quotas, groups: Iterable[str]) -> int | None:
    """The most GPUs a member of `groups` may hold: the largest of their groups' per-user limits,
    else the default; None for no limit."""
    limits = [
        quotas.groups[g].max_gpus_per_user
        for g in groups
        if g in quotas.groups and quotas.groups[g].max_gpus_per_user is not None
    ]
    return max(limits) if limits else quotas.max_gpus_per_user


def check_gpu_quota(
    quotas: Quotas, user: str, groups: Iterable[str], server: str, count: int, holdings: Iterable[GpuHolding]
) -> None:
    """Refuse (403) a spawn of `user`'s `server` with `count` GPUs that would exceed a quota.

    `holdings` are the other running or starting servers; one of `server` itself (a restart) is
    not counted twice.
    """
    if count == 0:
        return
    groups = frozenset(groups)
    others = [h for h in holdings if not (h.user == user and h.server == server)]
    limit = user_gpu_limit(quotas, groups)
    if limit is not None:
        mine = [h for h in others if h.user == user and h.count]
        held = sum(h.count for h in mine)
        if held + count > limit:
            servers = ", ".join(repr(h.server or "default") for h in mine)
            where = f" (servers: {servers})" if mine else ""
            raise ForbiddenOptionError(
                "gpu_count",
                count,
                f"you may hold at most {limit} GPUs and hold {held}{where}; "
                f"ask for at most {max(limit - held, 0)} or stop a server first",
                problem="would exceed your GPU quota",
            )
    for group in sorted(groups):
        group_limit = quotas.groups[group].max_gpus if group in quotas.groups else None
        if group_limit is None:
            continue
        held = sum(h.count for h in others if group in h.groups)
        if held + count > group_limit:
            raise ForbiddenOptionError(
                "gpu_count",
                count,
                f"group {group} may hold at most {group_limit} GPUs and its members hold "
                f"{held}; ask for at most {max(group_limit - held, 0)} or try again later",
                problem="would exceed your group's GPU quota",
            )
