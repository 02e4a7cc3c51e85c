"""Where the benchmarks' peers are: dask-labextension and jupyterlab-nvdashboard from PyPI, pinned in peers.txt.

The Makefile (`make bench-dask`, `make bench-gpu`, `make test`) installs them outside the repository:
both into their own virtual environment, so their lab and server extensions never load in our tests
or demo, and jupyterlab-nvdashboard alone (no dependencies) into a folder that only
bench/gpu_stream.py puts on its peer server's PYTHONPATH.
"""

from pathlib import Path

from tests.batch import cache_dir

PEERS_VENV = cache_dir() / "bench-peers-venv"
NVDASHBOARD_PATH = cache_dir() / "bench" / "jupyterlab-nvdashboard"
# What the Makefile touches once both are installed.
INSTALLED = PEERS_VENV / ".sciencelab-ready"


def peers_missing() -> str | None:
    """Why the peers cannot run here, or None when the Makefile installed them."""
    if not INSTALLED.exists():
        return f"the benchmarks' peers are not installed in {PEERS_VENV}: run `make bench-dask` (`make test` does)"
    return None


def require_peers_venv() -> Path:
    """The peers' venv; exits saying what to run when it is missing."""
    if missing := peers_missing():
        raise SystemExit(missing)
    return PEERS_VENV
