"""What `/sciencelab/api/info` reports: a pure function of the server's environment."""

import json
from collections.abc import Mapping

from ._version import __version__

# Capabilities that later ScienceLab releases switch on; the lab extension adds a section for each
# one that is on.
FEATURES = {"dask_clusters": True, "gpu_monitor": False, "session_sharing": False}

# The profile record a ScienceLab spawner puts in the server's environment, as JSON. Its format is
# written down where it is produced: `sciencelab_spawner/profile_record.py` (hub side).
PROFILE_RECORD_ENV = "SCIENCELAB_PROFILE"
PROFILE_RECORD_VERSION = 1


def read_profile_record(environ: Mapping[str, str]) -> dict | None:
    """The spawner's profile record, or None when no ScienceLab spawner started this server.

    A record this version cannot read becomes a profile with only a notice saying so, rather than
    an error in the panel.
    """
    text = environ.get(PROFILE_RECORD_ENV)
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        record = None
    if not isinstance(record, dict) or record.get("version") != PROFILE_RECORD_VERSION:
        return {
            "version": PROFILE_RECORD_VERSION,
            "slug": "unknown",
            "display_name": "Unknown profile",
            "description": "",
            "image": None,
            "gpu": None,
            "cvmfs": [],
            "s3": [],
            "collaborative": False,
            "resources": {"cpu_guarantee": None, "cpu_limit": None, "mem_guarantee": None, "mem_limit": None},
            "notices": [
                f"The hub sent a profile record this ScienceLab {__version__} cannot read; "
                "update ScienceLab in the server image."
            ],
            "not_applied": None,
        }
    return record


def read_batch_job(environ: Mapping[str, str]) -> dict | None:
    """The SLURM job this server runs as (a `runs_on: slurm` profile), from the job's environment."""
    if not environ.get("SLURM_JOB_ID"):
        return None
    return {
        "scheduler": "slurm",
        "job_id": environ["SLURM_JOB_ID"],
        "node": environ.get("SLURMD_NODENAME"),
        "partition": environ.get("SLURM_JOB_PARTITION"),
    }


def make_info(environ: Mapping[str, str], enabled: Mapping[str, bool] | None = None) -> dict:
    """Build the info document for a server whose process environment is `environ`.

    `enabled` switches features on (or off) as the server's configuration says, e.g. `{"gpu_monitor": True}`.
    """
    return {
        "version": __version__,
        "profile": read_profile_record(environ),
        "features": {**FEATURES, **(enabled or {})},
        "batch_job": read_batch_job(environ),
    }
