"""The profile record: what a ScienceLab spawner tells the single-user server about its profile.

The spawner sets the environment variable `SCIENCELAB_PROFILE` of the server to this record as
JSON; the `sciencelab` server extension reads it (and nothing else of the hub side) to show the
profile in JupyterLab. Format, version 1 (CPU in cores, memory in bytes, `null` where the admin
declared nothing)::

    {
      "version": 1,
      "slug": "a100", "display_name": "NVIDIA A100 (1 or 2 GPUs)", "description": "...",
      "image": {"name": "root", "display_name": "ROOT 6.32 and coffea", "image": "ghcr.io/..."} | null,
      "resources": {"cpu_guarantee": 4.0, "cpu_limit": 8.0, "mem_guarantee": 17179869184, "mem_limit": 34359738368},
      "gpu": {"model": "a100", "display_name": "NVIDIA A100 80 GB", "count": 1,
              "resource": "nvidia.com/gpu", "devices": ["GPU-8c5d..."]} | null,
      "cvmfs": [{"name": "sft.cern.ch", "display_name": "LCG views", "path": "/cvmfs/sft.cern.ch"}],
      "s3": [{"name": "cms-opendata", "display_name": "...", "endpoint": "https://s3.cern.ch",
              "bucket": "cms-opendata", "read_only": true}],
      "collaborative": false,
      "notices": ["Your last choice of size ('large') is no longer offered; using the default instead."],
      "not_applied": {"settings": ["image", "size", "cvmfs", "s3", "collaborative"],
                      "marker": "only on Kubernetes",
                      "reason": "This hub runs each server as a local process, ..."} | null
    }

`devices` lists the GPU UUIDs the local spawner assigned; it is empty where the scheduler assigns
them (Kubernetes). `not_applied` names the settings of the profile (by option: `image`, `size` for
CPU and memory, `cvmfs`, `s3`, `collaborative`) that the spawner which started the server does not
apply, a short `marker` to show next to each and the `reason` in a sentence; null (or absent, from
older hubs) when every setting applies.

A profile with `dask_config` also gets `SCIENCELAB_DASK_CONFIG_FILE`, the path of a Dask
configuration YAML whose `sciencelab.clusters` templates the server's Dask cluster manager offers.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from .user_options import ResolvedProfile

PROFILE_RECORD_ENV = "SCIENCELAB_PROFILE"
DASK_CONFIG_FILE_ENV = "SCIENCELAB_DASK_CONFIG_FILE"
PROFILE_RECORD_VERSION = 1


@dataclass(frozen=True)
class NotApplied:
    """Profile settings a spawner does not apply (option names), a marker to show next to each
    ("only on Kubernetes") and the reason, in a sentence for people."""

    settings: tuple[str, ...]
    marker: str
    reason: str


def make_profile_record(
    resolved: ResolvedProfile, gpu_devices: Sequence[str] = (), not_applied: NotApplied | None = None
) -> dict:
    """The record of `resolved` (see the module docstring), ready for `json.dumps`."""
    size = resolved.size
    return {
        "version": PROFILE_RECORD_VERSION,
        "slug": resolved.slug,
        "display_name": resolved.display_name,
        "description": resolved.description,
        "image": None
        if resolved.image is None
        else {
            "name": resolved.image.name,
            "display_name": resolved.image.display_name,
            "image": resolved.image.image,
        },
        "resources": {
            "cpu_guarantee": size.cpu_guarantee if size else None,
            "cpu_limit": size.cpu_limit if size else None,
            "mem_guarantee": size.mem_guarantee if size else None,
            "mem_limit": size.mem_limit if size else None,
        },
        "gpu": None
        if resolved.gpu_model is None
        else {
            "model": resolved.gpu_model.name,
            "display_name": resolved.gpu_model.display_name,
            "count": resolved.gpu_count,
            "resource": resolved.gpu_model.resource,
            "devices": list(gpu_devices),
        },
        "cvmfs": [{"name": r.name, "display_name": r.display_name, "path": r.mount_path} for r in resolved.cvmfs],
        "s3": [
            {
                "name": b.name,
                "display_name": b.display_name,
                "endpoint": b.endpoint,
                "bucket": b.bucket,
                "read_only": b.read_only,
            }
            for b in resolved.s3
        ],
        "collaborative": resolved.collaborative,
        "notices": list(resolved.notices),
        "not_applied": None
        if not_applied is None
        else {"settings": list(not_applied.settings), "marker": not_applied.marker, "reason": not_applied.reason},
    }
