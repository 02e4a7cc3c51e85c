"""A person's path through the UI, in Debian's Chromium driven by Playwright."""

import re

import pytest
from playwright.sync_api import expect

from sciencelab import __version__

from .conftest import LAB_TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.hub]


def log_in(page, hub, user: str):
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")


def assert_in_view(page, locator, what: str):
    """`locator` lies whole inside the window, without scrolling."""
    box, window = locator.bounding_box(), page.viewport_size
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= window["height"], (what, box, window)


def test_alice_picks_options_in_the_form_and_the_panel_shows_them(demo_hub, alice, page, screenshots):
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, demo_hub, alice)

    # No server yet, so the hub shows the spawn form: a card per profile alice may use.
    expect(page.locator("fieldset.sciencelab-profiles")).to_be_visible()
    expect(page.locator("#profile-gpu")).to_be_visible()
    expect(page.locator("#profile-cpu")).to_be_checked()
    # Only the selected profile's options are unfolded.
    expect(page.locator("#gpu-gpu_count")).to_be_hidden()
    page.select_option("#cpu-image", "root")
    page.select_option("#cpu-size", "medium")
    # The form remembers what alice chose in earlier tests: say every choice.
    page.check("#cpu-cvmfs-0")
    page.check("#cpu-cvmfs-1")  # cms.cern.ch, next to the default sft.cern.ch
    page.uncheck("#cpu-cvmfs-2")
    page.uncheck("#cpu-s3-0")
    page.screenshot(path=screenshots / "sciencelab-spawn-form.png", full_page=True)
    page.click("form button[type=submit]")

    page.wait_for_url("**/user/alice/lab**", timeout=LAB_TIMEOUT_MS)
    sidebar_tab = page.locator('.jp-SideBar [data-id="sciencelab-panel"]')
    sidebar_tab.wait_for(timeout=LAB_TIMEOUT_MS)
    sidebar_tab.click()

    panel = page.locator(".sciencelab-Panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".sciencelab-version")).to_contain_text(__version__)
    expect(panel.locator(".sciencelab-profile")).to_have_text("Profile: CPU analysis")
    # The demo runs servers as local processes: what only Kubernetes applies is folded apart.
    not_applied = panel.locator(".sciencelab-not-applied")
    expect(not_applied.locator("summary")).to_have_text("Only on Kubernetes: CPU, Memory, Image, CVMFS")
    not_applied.locator("summary").click()
    expect(not_applied.locator(".sciencelab-not-applied-reason")).to_contain_text("runs each server as a local process")
    details = not_applied.locator(".sciencelab-profile-details")
    expect(details.locator('[data-detail="Image"]')).to_contain_text("ROOT and coffea")
    expect(details.locator('[data-detail="Memory"]')).to_have_text("2 GiB guaranteed, up to 4 GiB")
    expect(details.locator('[data-detail="CVMFS"]')).to_have_text("/cvmfs/sft.cern.ch, /cvmfs/cms.cern.ch")
    not_applied.locator("summary").click()

    # A cluster from the panel: in a 900 px tall window its card shows whole below the profile,
    # each section as tall as its content.
    section = panel.locator(".sciencelab-DaskSection")
    section.get_by_role("button", name="New cluster").click()
    section.get_by_role("button", name="Create", exact=True).click()
    card = section.locator(".sciencelab-DaskCluster")
    expect(card.locator(".sciencelab-DaskWorkers")).to_have_text(
        re.compile(r"^(\d+) of \1 workers connected$"), timeout=120_000
    )
    panel.locator(".sciencelab-Sections").evaluate("column => { column.scrollTop = 0; }")
    assert_in_view(page, panel.locator(".sciencelab-profile"), "the profile")
    assert_in_view(page, card, "the cluster card")

    # A tidy picture for the README: the launcher drawn, JupyterLab's news question answered.
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=LAB_TIMEOUT_MS)
    news_toast = page.get_by_role("button", name="No", exact=True)
    if news_toast.is_visible():
        news_toast.click()
        expect(news_toast).to_be_hidden()
    page.screenshot(path=screenshots / "sciencelab-panel.png")


def test_bobs_form_does_not_offer_the_group_only_profile(demo_hub, bob, page):
    log_in(page, demo_hub, bob)
    expect(page.locator("fieldset.sciencelab-profiles")).to_be_visible()
    expect(page.locator("#profile-cpu")).to_be_visible()
    expect(page.locator("#profile-gpu")).to_have_count(0)
    expect(page.locator('#cpu-size option[value="large"]')).to_have_count(0)
