"""The Dask section in Debian's Chromium: a plain `jupyter lab` on loopback, a real local cluster.

From the panel form: create a cluster, watch its workers arrive, insert the connect code into a
notebook, run a computation there, see the result, shut the cluster down.
"""

import pytest
from playwright.sync_api import expect

from .conftest import LAB_TIMEOUT_MS
from .dask_clusters import run_connect_code
from .lab_server import LabServer

pytestmark = [pytest.mark.browser]

TEMPLATES = {
    "local": {
        "title": "Local cluster",
        "description": "Dask workers on this server.",
        "backend": "local",
        "options": {
            "workers": {"default": 1, "minimum": 0, "maximum": 2},
            "memory": {"default": 0.5, "minimum": 0.25, "maximum": 1},
        },
    }
}
WORKERS_TIMEOUT_MS = 120_000


@pytest.fixture
def lab(tmp_path):
    """A real `jupyter lab` with our extensions and a local template on 127.0.0.1; stopped after the test."""
    server = LabServer(tmp_path / "lab", config={"ClusterManager": {"templates": TEMPLATES}}).start()
    yield server
    server.stop()


def test_create_cluster_from_the_panel_and_compute_in_a_notebook(lab, page, screenshots):
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click(timeout=LAB_TIMEOUT_MS)
    expect(page.locator(".jp-NotebookPanel")).to_be_visible(timeout=LAB_TIMEOUT_MS)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(timeout=LAB_TIMEOUT_MS)

    page.locator('.jp-SideBar [data-id="sciencelab-panel"]').click()
    section = page.locator(".sciencelab-DaskSection")
    expect(section).to_be_visible()

    # The form comes from the template's JSON Schema, bounds included; a blank count is an error
    # at its field, not the template's default.
    section.get_by_role("button", name="New cluster").click()
    workers = section.locator("input#root_workers")
    expect(workers).to_have_attribute("max", "2")
    workers.fill("")
    section.get_by_role("button", name="Create", exact=True).click()
    expect(section.locator(".form-group:has(#root_workers)").last).to_contain_text(
        "workers: enter a whole number; choose 0 to 2 workers"
    )
    expect(section.locator(".sciencelab-DaskCluster")).to_have_count(0)
    workers.fill("2")
    section.get_by_role("button", name="Create", exact=True).click()

    card = section.locator(".sciencelab-DaskCluster")
    expect(card).to_have_count(1, timeout=60_000)
    expect(card.locator(".sciencelab-DaskWorkers")).to_have_text("2 of 2 workers connected", timeout=WORKERS_TIMEOUT_MS)

    # Insert the connect code into the notebook (into its empty first cell, leaving no empty
    # cell above), run it, then compute on the cluster.
    run_connect_code(page, card)
    expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_contain_text("Client(")

    page.keyboard.type("print(sum(client.gather(client.map(lambda x: x * x, range(10)))))")
    page.keyboard.press("Shift+Enter")
    expect(page.locator(".jp-OutputArea-output").filter(has_text="285")).to_have_count(1, timeout=60_000)

    # A tidy picture for the README: the panel with its live cluster next to the notebook.
    news_toast = page.get_by_role("button", name="No", exact=True)
    if news_toast.is_visible():
        news_toast.click()
        expect(news_toast).to_be_hidden()
    page.screenshot(path=screenshots / "sciencelab-dask.png")

    # The dashboard and one of its plots open as lab tabs, through jupyter-server-proxy.
    card.get_by_role("button", name="Status", exact=True).click()
    expect(page.locator(".sciencelab-DaskDashboard iframe[src$='/status']")).to_have_count(1)
    card.get_by_role("button", name="Task stream").click()
    expect(page.locator(".sciencelab-DaskDashboard iframe[src$='/individual-task-stream']")).to_have_count(1)

    card.get_by_role("button", name="Shut down").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Shut down").click()
    expect(section.locator(".sciencelab-DaskCluster")).to_have_count(0, timeout=60_000)
    expect(section).to_contain_text("No Dask cluster yet.")
