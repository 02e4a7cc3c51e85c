"""A person's path through the UI, in Debian's Chromium driven by Playwright."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from sciencelab import __version__

from .conftest import LAB_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.hub]


@pytest.fixture
def screenshot_path(tmp_path) -> Path:
    """Where the test saves its screenshot: $SCIENCELAB_SCREENSHOT_DIR (`make screenshot` sets docs/)."""
    folder = Path(os.environ.get("SCIENCELAB_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "sciencelab-panel.png"


def test_alice_logs_in_picks_a_profile_and_opens_the_panel(demo_hub, alice, page, screenshot_path):
    page.goto(f"{demo_hub.url}/hub/login")
    page.fill("#username_input", alice)
    page.fill("#password_input", demo_hub.password)
    page.click("#login_submit")

    # No server yet, so the hub shows the spawn form with the admin's profiles.
    expect(page.locator("fieldset.sciencelab-profiles")).to_be_visible()
    page.check("#profile-large")
    page.click("form button[type=submit]")

    page.wait_for_url("**/user/alice/lab**", timeout=LAB_TIMEOUT_MS)
    sidebar_tab = page.locator('.jp-SideBar [data-id="sciencelab-panel"]')
    sidebar_tab.wait_for(timeout=LAB_TIMEOUT_MS)
    sidebar_tab.click()

    panel = page.locator(".sciencelab-Panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".sciencelab-version")).to_contain_text(__version__)
    expect(panel).to_contain_text("Large: 4 CPUs, 8 GB")

    # A tidy picture for the README: the launcher drawn, JupyterLab's news question answered.
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=LAB_TIMEOUT_MS)
    news_toast = page.get_by_role("button", name="No", exact=True)
    if news_toast.is_visible():
        news_toast.click()
        expect(news_toast).to_be_hidden()
    page.screenshot(path=screenshot_path)
