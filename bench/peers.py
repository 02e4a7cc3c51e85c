"""Where the Dask benchmarks' peers are: dask-labextension and jupyterlab-nvdashboard, from PyPI.

`make bench-dask` installs them into their own virtual environment, outside the repository, so
their lab and server extensions never load in our tests or demo.
"""

import os
from pathlib import Path

PEERS_VENV = Path(os.environ.get("SCIENCELAB_CACHE_DIR", Path.home() / ".cache" / "sciencelab")) / "bench-peers-venv"


def require_peers_venv() -> Path:
    """The peers' venv; exits saying what to run when it is missing."""
    if not (PEERS_VENV / "bin" / "jupyter").exists():
        raise SystemExit(f"{PEERS_VENV} is missing: run `make bench-dask`, which installs the peers there")
    return PEERS_VENV
