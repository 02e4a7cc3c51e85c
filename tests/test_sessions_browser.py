"""Session lifetimes in Debian's Chromium on a real demo hub: the lab's countdown, the warning with its
Extend action, the Session section's Extend up to the profile's cap, and the hub service agreeing.

alice's profile runs 14 minutes, so the 15-minute warning is due as soon as the lab opens; two
10-minute extensions reach its 34-minute cap. Nothing waits for a deadline: the stops themselves
are tests/test_sessions_hub.py's.
"""

import re
import textwrap
import time
from datetime import datetime

import pytest
from playwright.sync_api import expect

from .conftest import LAB_TIMEOUT_MS
from .demo_hub import DemoHub
from .test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.hub]

LIFETIME_MINUTES = 14
STEP_MINUTES = 10
CAP_MINUTES = 34
DEADLINE_PATH = "/services/sciencelab/api/users/alice/server/deadline"
# The lab reads the terms again right after an extension; the hub answers within a second or two.
UPDATE_TIMEOUT_MS = 20_000

PROFILES = textwrap.dedent(f"""
    profiles:
      - slug: analysis
        display_name: Short analysis session
        description: A {LIFETIME_MINUTES}-minute session; extend it by {STEP_MINUTES} minutes, up to {CAP_MINUTES} in all.
        default: true
        lifetime: {LIFETIME_MINUTES}m
        idle_timeout: 0
        extend: {{step: {STEP_MINUTES}m, cap: {CAP_MINUTES}m}}
""")


@pytest.fixture(scope="module")
def session_hub(tmp_path_factory):
    """A demo hub whose only profile has a 14-minute lifetime, extensible twice up to 34 minutes.

    alice's server is stopped after the test, then the hub; the test fails if the hub logged a
    traceback meanwhile."""
    hub = DemoHub(tmp_path_factory.mktemp("session-hub"), profiles=PROFILES).start()
    try:
        yield hub
        hub.stop_server("alice")
        hub.check_log()
    finally:
        hub.stop()
        print(f"demo hub log: {hub.log_path}")


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def clock(text: str) -> str:
    """The hub's ISO time as the lab shows it today: local `HH:MM` (the browser shares this machine's zone)."""
    return iso(text).astimezone().strftime("%H:%M")


def hub_deadline(hub: DemoHub) -> dict:
    response = hub.request("GET", DEADLINE_PATH, "alice")
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_new_deadline(hub: DemoHub, old: str) -> dict:
    """The hub service's document once its deadline is no longer `old`."""
    end = time.monotonic() + UPDATE_TIMEOUT_MS / 1000
    while time.monotonic() < end:
        document = hub_deadline(hub)
        if document["deadline"] != old:
            return document
        time.sleep(0.2)
    raise AssertionError(f"the deadline stayed at {old}:\n{hub.log_tail()}")


def test_countdown_warning_and_extend_up_to_the_cap(session_hub, page, screenshots):
    hub = session_hub
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, hub, "alice")
    expect(page.locator("#profile-analysis")).to_be_checked()
    page.click("form button[type=submit]")
    page.wait_for_url("**/user/alice/lab**", timeout=LAB_TIMEOUT_MS)

    terms = hub_deadline(hub)
    started = iso(terms["started"])
    assert (iso(terms["deadline"]) - started).total_seconds() == LIFETIME_MINUTES * 60
    assert (iso(terms["extend_until"]) - started).total_seconds() == CAP_MINUTES * 60
    assert terms["extend_step"] == STEP_MINUTES * 60

    # The countdown, and at once the 15-minute warning, with its Extend action.
    status = page.locator("#sciencelab-session-status span.sciencelab-SessionStatus-text")
    expect(status).to_have_text(re.compile(r"^1[34] min left$"), timeout=LAB_TIMEOUT_MS)
    expect(status).to_have_class(re.compile(r"\bsciencelab-mod-urgent\b"))
    warning = page.locator(".Toastify__toast").filter(has_text="Your server stops at")
    expect(warning).to_have_count(1, timeout=UPDATE_TIMEOUT_MS)
    # "in 13 min" or "in 14 min", by the second.
    expect(warning).to_contain_text(f"Your server stops at {clock(terms['deadline'])}, in 1")
    expect(warning).to_contain_text("save your work or extend the session.")
    extend_action = warning.get_by_role("button", name="Extend", exact=True)
    expect(extend_action).to_be_visible()

    # A click on the countdown opens the ScienceLab panel on the Session section.
    status.click()
    section = page.locator("#sciencelab-session-section")
    expect(section).to_be_visible()
    expect(section.locator('[data-sciencelab="session-remaining"]')).to_have_text(re.compile(r"^1[34] min left$"))
    expect(section.locator('[data-sciencelab="session-deadline"]')).to_have_text(clock(terms["deadline"]))
    expect(section.locator('[data-sciencelab="session-limit"]')).to_have_text(clock(terms["extend_until"]))
    expect(section.locator('[data-sciencelab="session-idle"]')).to_have_text("never")
    button = section.locator("#sciencelab-session-extend")
    expect(button).to_have_text(f"Extend by {STEP_MINUTES} min")
    expect(button).to_be_enabled()

    # A tidy picture for the docs: the panel on the Session section, the countdown, the warning.
    news_toast = page.get_by_role("button", name="No", exact=True)
    if news_toast.is_visible():
        news_toast.click()
        expect(news_toast).to_be_hidden()
    expect(page.locator(".jp-Launcher")).to_be_visible(timeout=LAB_TIMEOUT_MS)
    page.screenshot(path=screenshots / "sciencelab-session.png")

    # Extend from the warning: the deadline moves by one step, the warning goes, the lab follows.
    clicked = time.monotonic()
    extend_action.click()
    expect(status).to_have_text(re.compile(r"^2[34] min left$"), timeout=UPDATE_TIMEOUT_MS)
    first_shown = time.monotonic() - clicked
    first = wait_for_new_deadline(hub, terms["deadline"])
    first_move = (iso(first["deadline"]) - iso(terms["deadline"])).total_seconds()
    assert first_move == STEP_MINUTES * 60
    expect(warning).to_have_count(0)
    expect(section.locator('[data-sciencelab="session-deadline"]')).to_have_text(clock(first["deadline"]))
    expect(section.locator("#sciencelab-session-message")).to_have_text(
        f"Extended: your server now stops at {clock(first['deadline'])}."
    )

    # Extend from the section: the deadline reaches the cap, and the section says why it stays there.
    clicked = time.monotonic()
    button.click()
    expect(status).to_have_text(re.compile(r"^3[34] min left$"), timeout=UPDATE_TIMEOUT_MS)
    second_shown = time.monotonic() - clicked
    second = wait_for_new_deadline(hub, first["deadline"])
    second_move = (iso(second["deadline"]) - iso(first["deadline"])).total_seconds()
    assert second_move == STEP_MINUTES * 60
    assert second["deadline"] == second["extend_until"] == terms["extend_until"]
    expect(button).to_be_disabled()
    limit = clock(terms["extend_until"])
    expect(section.locator("#sciencelab-session-message")).to_have_text(
        f"Extended: your server now stops at {limit}. This session cannot run past {limit}, its profile's limit."
    )
    refused = hub.request("POST", DEADLINE_PATH, "alice", json={})
    assert refused.status_code == 409, refused.text
    print(
        f"\ndeadline moves: {first_move:.0f} s from the warning's Extend (countdown updated after "
        f"{first_shown:.1f} s), {second_move:.0f} s from the section's (after {second_shown:.1f} s); "
        f"now {(iso(second['deadline']) - started).total_seconds() / 60:.0f} min after the start, the cap"
    )
