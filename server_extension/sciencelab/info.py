"""What `/sciencelab/api/info` reports: a pure function of the server's environment."""

from collections.abc import Mapping

from ._version import __version__

# Capabilities that later ScienceLab releases switch on; the lab extension shows the disabled ones
# as "coming" instead of failing on routes that do not exist yet.
FEATURES = {"dask_clusters": False, "gpu_monitor": False, "session_sharing": False}

# Set by the ScienceLab spawners on every single-user server they start.
PROFILE_SLUG_ENV = "SCIENCELAB_PROFILE"
PROFILE_NAME_ENV = "SCIENCELAB_PROFILE_DISPLAY_NAME"


def make_info(environ: Mapping[str, str], enabled: Mapping[str, bool] | None = None) -> dict:
    """Build the info document for a server whose process environment is `environ`.

    `enabled` switches features on (or off) as the server's configuration says, e.g. `{"gpu_monitor": True}`.
    """
    slug = environ.get(PROFILE_SLUG_ENV)
    profile = None
    if slug:
        profile = {"slug": slug, "display_name": environ.get(PROFILE_NAME_ENV, slug)}
    return {"version": __version__, "profile": profile, "features": {**FEATURES, **(enabled or {})}}
