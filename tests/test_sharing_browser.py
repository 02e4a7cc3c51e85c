"""Sharing and co-editing in Debian's Chromium on the demo hub: alice shares her collaborative server
with bob from the lab's Share dialog, then both edit one notebook at once, each in a browser of
their own. What one types shows in the other's view within 2 s, both see each other in the
Collaborators section, the file on disk holds both edits, and bob runs a cell in the shared kernel.

A server without collaboration offers the Share command disabled, saying why.
"""

import json
import re
import time

import pytest
from playwright.sync_api import expect

from .conftest import LAB_TIMEOUT_MS
from .test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SERVER = "together"
LAB = f"/user/alice/{SERVER}/lab"
CONTENTS = f"/user/alice/{SERVER}/api/contents"
NOTEBOOK = "shared.ipynb"
# The co-editing promise: an edit shows in the other person's view within this many seconds.
PROPAGATION_LIMIT_S = 2.0
SAVE_TIMEOUT_S = 30


def notebook_document(*sources: str) -> dict:
    return {
        "type": "notebook",
        "format": "json",
        "content": {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [
                {
                    "cell_type": "code",
                    "id": f"cell-{index}",
                    "source": source,
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                }
                for index, source in enumerate(sources)
            ],
        },
    }


@pytest.fixture
def together(demo_hub, alice, bob):
    """alice's collaborative server `together`, with a two-cell notebook; stopped after the test,
    every share of it revoked first."""
    response = demo_hub.spawn("alice", {"profile": "collab", "collaborative": True}, SERVER)
    assert response.status_code in (201, 202), demo_hub.log_tail()
    try:
        created = demo_hub.request(
            "PUT", f"{CONTENTS}/{NOTEBOOK}", "alice", json=notebook_document("# notes\n", "import os\nos.getpid()")
        )
        assert created.status_code in (200, 201), created.text
        # No question about Jupyter news over the pages (both users' labs read these settings).
        news = demo_hub.request(
            "PUT",
            f"/user/alice/{SERVER}/lab/api/settings/@jupyterlab/apputils-extension:notification",
            "alice",
            json={"raw": json.dumps({"fetchNews": "false"})},
        )
        assert news.status_code == 204, news.text
        yield demo_hub
    finally:
        demo_hub.request("DELETE", f"/user/alice/{SERVER}/sciencelab/api/shares", "alice")
        demo_hub.stop_server("alice", SERVER)


def open_lab(page, hub, user: str, path: str = ""):
    """Log `user` in and open alice's lab (at `path`), accepting the hub's question whether the
    lab may act for a guest."""
    log_in(page, hub, user)
    page.wait_for_load_state()
    page.goto(f"{hub.url}{LAB}{path}")
    authorize = page.get_by_role("button", name="Authorize")
    if "/oauth2/authorize" in page.url:
        authorize.click()
    page.wait_for_url(f"**{LAB}**", timeout=LAB_TIMEOUT_MS)
    expect(page.locator('.jp-SideBar [data-id="sciencelab-panel"]')).to_be_visible(timeout=LAB_TIMEOUT_MS)


def show_panel(page):
    """Open the ScienceLab panel (a click on its tab would close it when the lab restored it open)."""
    if not page.locator(".sciencelab-Panel").is_visible():
        page.locator('.jp-SideBar [data-id="sciencelab-panel"]').click()
    expect(page.locator(".sciencelab-Panel")).to_be_visible()


def first_cell(page):
    return page.locator(".jp-NotebookPanel .jp-Cell").first.locator(".cm-content")


def wait_for_text(page, text: str) -> float:
    """Seconds until `text` shows in the first cell of `page`'s notebook (checked every 20 ms)."""
    started = time.monotonic()
    page.wait_for_function(
        """text => [...document.querySelectorAll('.jp-NotebookPanel .jp-Cell .cm-content')]
                .some(node => node.textContent.includes(text))""",
        arg=text,
        polling=20,
        timeout=30_000,
    )
    return time.monotonic() - started


def type_at_end_of_first_cell(page, text: str):
    # On a busy machine jupyter-collaboration asks whether to keep waiting for a slow document;
    # the dialog stays after the document arrived.
    slow = page.locator(".jp-Dialog", has_text="taking some time to load")
    if slow.count():
        slow.get_by_role("button", name="Continue waiting").click()
    cell = first_cell(page)
    cell.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def saved_source(hub) -> str:
    document = hub.request("GET", f"{CONTENTS}/{NOTEBOOK}?content=1", "alice").json()
    return "".join(document["content"]["cells"][0]["source"])


def test_alice_shares_with_bob_and_they_edit_one_notebook_together(together, browser, screenshots):
    hub = together
    contexts = [browser.new_context(viewport={"width": 1280, "height": 800}) for _ in range(2)]
    try:
        alice, bob = (context.new_page() for context in contexts)

        # alice shares her server with bob from the Share button under her profile.
        open_lab(alice, hub, "alice")
        show_panel(alice)
        share_button = alice.locator('.sciencelab-ProfileActions [data-command="sciencelab:share"]')
        expect(share_button).not_to_have_attribute("aria-disabled", "true", timeout=LAB_TIMEOUT_MS)
        share_button.click()
        dialog = alice.locator(".jp-Dialog")
        expect(dialog.locator(".sciencelab-ShareEmpty")).to_be_visible()
        # A name the hub does not know: its refusal shows under the field.
        dialog.locator("#sciencelab-share-name").fill("nobody")
        dialog.locator("#sciencelab-share-name").press("Enter")
        expect(dialog.locator("#sciencelab-share-add-error")).to_contain_text("The hub refused")
        dialog.locator("#sciencelab-share-name").fill("bob")
        dialog.locator("#sciencelab-share-name").press("Enter")
        expect(dialog.locator('.sciencelab-ShareItem[data-name="bob"]')).to_be_visible()
        expect(dialog.locator("#sciencelab-share-add-error")).to_have_count(0)
        # A share link, shown once, absolute on the hub's origin, listed with its expiry.
        dialog.locator("#sciencelab-share-lifetime").select_option(label="Valid for 1 hour")
        dialog.get_by_role("button", name="Create link").click()
        expect(dialog.locator("#sciencelab-share-link")).to_have_value(
            re.compile(rf"^{re.escape(hub.url)}/hub/accept-share\?code=\S+$")
        )
        expect(dialog.locator(".sciencelab-ShareItem[data-code] .sciencelab-ShareItemDetail")).to_have_text(
            "expires in 59 min · not used yet"
        )
        alice.screenshot(path=screenshots / "sciencelab-share-dialog.png")
        codes = hub.request("GET", f"/user/alice/{SERVER}/sciencelab/api/shares", "alice").json()["codes"]
        dialog.locator("[aria-label^='Revoke link']").click()
        expect(dialog.locator(".sciencelab-ShareItem[data-code]")).to_have_count(0)
        assert len(codes) == 1
        dialog.get_by_role("button", name="Done").click()
        expect(dialog).to_have_count(0)

        # Both open the notebook.
        alice.goto(f"{hub.url}{LAB}/tree/{NOTEBOOK}")
        open_lab(bob, hub, "bob", f"/tree/{NOTEBOOK}")
        for page in (alice, bob):
            expect(first_cell(page)).to_contain_text("# notes", timeout=LAB_TIMEOUT_MS)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(
                timeout=LAB_TIMEOUT_MS
            )

        # What one types shows in the other's view.
        type_at_end_of_first_cell(alice, " alice-was-here")
        alice_to_bob = wait_for_text(bob, "alice-was-here")
        type_at_end_of_first_cell(bob, " bob-too")
        bob_to_alice = wait_for_text(alice, "bob-too")
        print(f"\npropagation: alice -> bob {alice_to_bob:.3f} s, bob -> alice {bob_to_alice:.3f} s")
        assert alice_to_bob < PROPAGATION_LIMIT_S and bob_to_alice < PROPAGATION_LIMIT_S

        # Each sees the other in the Collaborators section, in the notebook.
        for page, other in ((alice, "bob"), (bob, "alice")):
            show_panel(page)
            section = page.locator("#sciencelab-collaborators-section")
            expect(section).to_be_visible()
            person = section.locator(f'.sciencelab-Collaborator[data-username="{other}"]')
            expect(person.locator(".sciencelab-CollaboratorDocument")).to_have_text(NOTEBOOK, timeout=20_000)
            expect(section.locator(".sciencelab-CollaboratorMe")).to_have_count(1)
        # bob's lab is on alice's server: nothing there is his to share.
        expect(bob.locator("#sciencelab-shared-with-me-section")).to_be_hidden()

        # bob runs the second cell in the kernel alice's notebook runs on; both see its output.
        bob.locator(".jp-NotebookPanel .jp-Cell").nth(1).locator(".cm-content").click()
        bob.keyboard.press("Shift+Enter")
        for page in (bob, alice):
            expect(page.locator(".jp-NotebookPanel .jp-Cell").nth(1).locator(".jp-OutputArea-output")).to_have_text(
                re.compile(r"^\d+$"), timeout=60_000
            )
        sessions = hub.request("GET", f"/user/alice/{SERVER}/api/sessions", "alice").json()
        # Each tab has a session of its own, both on the notebook's one kernel.
        assert {session["path"] for session in sessions} == {NOTEBOOK}, sessions
        assert len({session["kernel"]["id"] for session in sessions}) == 1, sessions

        # The picture for the docs: alice's view with bob in the notebook and in the panel.
        first_cell(alice).click()
        alice.screenshot(path=screenshots / "sciencelab-collaboration.png")

        # The file on disk holds both edits (the collaboration server saves on its own; Ctrl+S too).
        alice.keyboard.press("Control+s")
        deadline = time.monotonic() + SAVE_TIMEOUT_S
        source = saved_source(hub)
        while not ("alice-was-here" in source and "bob-too" in source) and time.monotonic() < deadline:
            time.sleep(0.5)
            source = saved_source(hub)
        assert "alice-was-here" in source and "bob-too" in source, json.dumps(source)

        # alice revokes through the hub's API: bob's lab says so, within seconds.
        revoked = time.monotonic()
        assert hub.request("DELETE", f"/hub/api/shares/alice/{SERVER}", "alice").status_code == 204
        dialog = bob.locator(".jp-Dialog", has_text="Access revoked")
        expect(dialog).to_be_visible(timeout=5_000)
        print(f"revoked: bob's lab said so after {time.monotonic() - revoked:.2f} s")
        expect(dialog.locator(".jp-Dialog-body")).to_contain_text("You no longer have access to alice's server")
    finally:
        for context in contexts:
            context.close()


def test_a_server_without_collaboration_offers_share_disabled_saying_why(demo_hub, alice, page):
    response = demo_hub.spawn("alice", {"profile": "collab", "collaborative": False})
    assert response.status_code in (201, 202), demo_hub.log_tail()
    log_in(page, demo_hub, "alice")
    page.wait_for_url("**/user/alice/lab**", timeout=LAB_TIMEOUT_MS)
    page.locator('.jp-SideBar [data-id="sciencelab-panel"]').click(timeout=LAB_TIMEOUT_MS)
    panel = page.locator(".sciencelab-Panel")
    expect(panel.locator('[data-detail="Collaboration"]')).to_have_text("off")
    share_button = panel.locator('.sciencelab-ProfileActions [data-command="sciencelab:share"]')
    # JupyterLab's toolbar button is a <jp-button> web component: disabled is an ARIA state.
    expect(share_button).to_have_attribute("aria-disabled", "true")
    expect(share_button).to_have_attribute("title", re.compile("without real-time collaboration"))
    expect(panel.locator("#sciencelab-collaborators-section")).to_have_count(0)
    expect(panel.locator("#sciencelab-shared-with-me-section")).to_be_hidden()
    # The lab done loading: closing it mid-request would leave the server a closed stream to log.
    page.wait_for_load_state("networkidle")
