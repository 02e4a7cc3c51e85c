"""Whether a profile's GPUs can be placed on this hub at all. Pure.

A profile that cannot (no GPU on the machine, no GPU of its model, fewer than it needs) is shown
disabled with the reason in the spawn form and the profiles API, and a spawn of it is a 400. A
profile whose GPUs exist but are all taken stays offered: that spawn is a 409, worth trying later.
"""

from collections.abc import Mapping

from .profile_config import Profile, ProfileConfig


def gpu_placement_problem(
    config: ProfileConfig,
    profile: Profile,
    gpu_free: Mapping[str, tuple[int, int]],
    gpu_problem: str | None,
    hub_kind: str | None = None,
) -> str | None:
    """Why no spawn of `profile` can get its GPUs on this hub, now or later; None when one can.

    `gpu_free` and `gpu_problem` are the spawner's GPU status: (free, total) per GPU model name,
    and why there are no GPUs at all. They count the GPUs of where the hub's spawner starts
    servers (`hub_kind`, "local" or "kubernetes"); a profile that runs elsewhere (a SLURM job, a
    pod from a local hub) gets its GPUs from that scheduler, which the hub does not count.
    """
    if profile.gpu_model is None or profile.runs_on not in (None, hub_kind):
        return None
    if gpu_problem is not None:
        return gpu_problem
    need = profile.gpu_count.minimum
    models = [config.gpu_models[choice.value] for choice in profile.gpu_model.choices]
    totals = [gpu_free.get(model.name, (0, 0))[1] for model in models]
    if any(total >= need for total in totals):
        return None
    if not any(totals):
        return f"this hub has no {' and no '.join(model.display_name for model in models)}"
    have = ", ".join(f"{total} {model.display_name}" for model, total in zip(models, totals, strict=True))
    return f"this hub has {have}; the profile needs at least {need} of one model"
