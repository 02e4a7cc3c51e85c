"""Shared fixtures. Every fixture that starts a service binds it to 127.0.0.1 and stops it after."""

import pytest

from .demo_hub import DemoHub

pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.k8s.fixtures"]


@pytest.fixture(scope="session")
def demo_hub(tmp_path_factory):
    """The real demo hub (`sciencelab demo`: JupyterHub + configurable-http-proxy) on a free port.

    One hub for the session: starting it costs seconds. Tests stop the servers they start.
    """
    hub = DemoHub(tmp_path_factory.mktemp("demo-hub")).start()
    yield hub
    hub.stop()
    print(f"demo hub log: {hub.log_path}")


@pytest.fixture
def alice(demo_hub):
    """The demo user alice; her server is stopped after the test, whatever happened."""
    yield "alice"
    demo_hub.stop_server("alice")


@pytest.fixture
def bob(demo_hub):
    """The demo user bob; his server is stopped after the test, whatever happened."""
    yield "bob"
    demo_hub.stop_server("bob")
