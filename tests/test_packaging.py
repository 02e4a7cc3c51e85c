"""The one wheel: both import packages, the prebuilt lab extension, and a clean install that enables both."""

import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from sciencelab import __version__

from .demo_hub import REPO

pytestmark = pytest.mark.packaging

ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
DATA = f"sciencelab-{__version__}.data/data"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel .` of this checkout; the lab extension is already built by `make`."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(REPO)],
        check=True,
    )
    return next(out.glob("sciencelab-*.whl"))


def test_wheel_holds_both_packages_and_the_prebuilt_extension(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "sciencelab/__init__.py",
        "sciencelab/_version.py",
        "sciencelab_spawner/__init__.py",
        f"{DATA}/share/jupyter/labextensions/@sciencelab/labextension/package.json",
        f"{DATA}/share/jupyter/labextensions/@sciencelab/labextension/install.json",
        f"{DATA}/share/jupyter/labextensions/@sciencelab/labextension/static/style.js",
        f"{DATA}/etc/jupyter/jupyter_server_config.d/sciencelab.json",
    ):
        assert expected in names
    # `packages` strips the folder prefixes: nothing lands under spawner/ or server_extension/.
    assert not [n for n in names if n.startswith(("spawner/", "server_extension/", "tests/"))]


def test_wheel_declares_the_spawner_and_the_command(wheel):
    entry_points = zipfile.ZipFile(wheel).read(f"sciencelab-{__version__}.dist-info/entry_points.txt").decode()
    assert "sciencelab-local = sciencelab_spawner.local:LocalProfileSpawner" in entry_points
    assert "sciencelab = sciencelab_spawner.cli:main" in entry_points


def test_clean_install_enables_both_extensions(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    subprocess.run([bin_dir / "python", "-m", "pip", "install", "--quiet", str(wheel)], check=True)

    def listing(*subcommand: str) -> str:
        result = subprocess.run(
            [bin_dir / "jupyter", *subcommand, "list"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        )
        return ANSI_COLOUR.sub("", result.stdout + result.stderr)

    lab = listing("labextension")
    assert "@sciencelab/labextension" in lab and "enabled" in lab and "OK" in lab, lab
    server = listing("server", "extension")
    assert "sciencelab enabled" in server and f"sciencelab {__version__} OK" in server, server
