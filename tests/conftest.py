"""Shared fixtures. Every fixture that starts a service binds it to 127.0.0.1 and stops it after."""

import os

import pytest
from playwright.sync_api import sync_playwright

from .demo_hub import DemoHub

pytest_plugins = ["pytest_jupyter.jupyter_server"]


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


CHROMIUM = os.environ.get("SCIENCELAB_CHROMIUM", "/usr/bin/chromium")
# Headless on a machine without a GPU, a sandbox (we may be root) or network beyond loopback.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAB_TIMEOUT_MS = 180_000


@pytest.fixture
def browser():
    """Debian's Chromium (never a browser downloaded by Playwright), closed after the test.

    Function scope on purpose: Playwright's sync API runs on the current event loop, and
    pytest-jupyter's autouse loop fixture closes that loop after every test.
    """
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()
