"""A broken profile source stops the hub at start-up, naming the file, the profile and the field."""

import os
import subprocess
import sys
import textwrap

import pytest

from sciencelab_spawner.demo import free_port

from .demo_hub import REPO, DemoHub

pytestmark = pytest.mark.hub

BROKEN = "profiles:\n  - {slug: cpu, display_name: CPU}\n  - {slug: GPU Large, display_name: GPU}\n"
PROBLEM = "profile 'GPU Large' (profiles[1]), slug: 'GPU Large' is not valid"


def test_plain_jupyterhub_with_a_broken_profile_file_refuses_to_start(tmp_path):
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(BROKEN)
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        textwrap.dedent(f"""
        from sciencelab_spawner.hub_config import configure_sciencelab
        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {free_port()}
        c.JupyterHub.hub_port = {free_port()}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
        c.JupyterHub.db_url = "sqlite:///{tmp_path / "hub.sqlite"}"
        c.JupyterHub.cookie_secret_file = "{tmp_path / "cookie_secret"}"
        c.JupyterHub.authenticator_class = "dummy"
        configure_sciencelab(c, profiles_file="{profiles}", service_port={free_port()})
    """)
    )
    env = {**os.environ, "PATH": f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    hub = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert hub.returncode != 0
    assert f"Invalid ScienceLab profiles: {profiles}: {PROBLEM}" in hub.stderr
    # It stopped while loading its configuration: no proxy was started to be left behind.
    assert "Starting proxy" not in hub.stderr


def test_demo_with_a_broken_profile_file_refuses_to_start(tmp_path):
    hub = DemoHub(tmp_path / "state", profiles=BROKEN)
    with pytest.raises(RuntimeError, match="the demo hub exited with 1") as error:
        hub.start()
    assert PROBLEM in str(error.value)
