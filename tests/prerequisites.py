"""What a test needs that `make test` installs (a batch system, kube-apiserver, the benchmarks' peers).

Without it the test skips, saying what to run; under CI=true it fails instead: CI runs every tier.
"""

import os

import pytest


def require(missing: str | None):
    """Nothing when `missing` is None; otherwise skip with that reason, or fail under CI=true."""
    if missing is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {missing}", pytrace=False)
    pytest.skip(missing)
