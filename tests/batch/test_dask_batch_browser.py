"""The Dask section in Debian's Chromium with the test HTCondor pool: batch states as a person sees them.

A job that takes all but one CPU of the pool keeps a new cluster's two-core workers idle in the
queue; the panel says so, with HTCondor's reason on hover. A one-core cluster whose jobs cannot
write their logs gets the last CPU and is held, with HTCondor's hold reason. Once the big job is
removed, the idle workers' jobs start and the states move on to connected. Each job's log opens
from the worker table.
"""

import os
import time

import pytest
from playwright.sync_api import expect

from ..lab_server import LabServer
from ..test_browser import LAB_TIMEOUT_MS
from . import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.htcondor]

STATES_TIMEOUT_MS = 120_000


def template(title: str, log_directory, cores: int) -> dict:
    return {
        "title": title,
        "description": "Dask workers as jobs of the HTCondor pool.",
        "backend": "htcondor",
        "options": {
            "workers": {"default": 2, "minimum": 0, "maximum": 4},
            "cores": {"default": cores, "minimum": 1, "maximum": 2},
            "memory": {"default": 1, "minimum": 0.5, "maximum": 2},
            "walltime": {"default": 30, "minimum": 10, "maximum": 60},
        },
        "backend_settings": {"log_directory": str(log_directory), "interface": "lo", "disk": 0.1},
    }


@pytest.fixture
def lab(htcondor_pool, tmp_path):
    """A real `jupyter lab` that submits to the test pool; stopped after the test, its jobs gone.

    Template `pool` makes two-core workers; `held` one-core workers logging into a directory the
    jobs' user cannot write, so HTCondor holds their jobs.
    """
    unwritable = htcondor_pool.job_directory(f"unwritable-{time.time_ns()}")
    os.chown(unwritable, 0, 0)
    templates = {
        "pool": template("HTCondor pool", htcondor_pool.job_directory(f"lab-{time.time_ns()}"), 2),
        "held": template("Unwritable logs", unwritable, 1),
    }
    server = LabServer(
        tmp_path / "lab",
        env={**htcondor_pool.env(), "DASK_CONFIG": str(tmp_path / "dask-config")},
        config={"ClusterManager": {"templates": templates, "refresh_interval": 0.5}},
    ).start()
    yield server
    server.stop()
    wait_until(lambda: not htcondor_pool.jobs(), 60, "the queue emptying", describe=lambda: str(htcondor_pool.jobs()))


@pytest.fixture
def blocker(htcondor_pool):
    """A job that takes all CPUs of the pool but one; its id once it runs. Removed after the test."""
    folder = htcondor_pool.job_directory(f"blocker-{time.time_ns()}")
    submit = folder / "blocker.sub"
    submit.write_text(
        f"executable = /bin/sleep\narguments = 600\nrequest_cpus = {htcondor_pool.cpus - 1}\n"
        f"request_memory = 16\nlog = {folder}/blocker.log\nqueue\n"
    )
    output = htcondor_pool.tool("condor_submit", str(submit)).stdout
    job_id = output.rsplit("cluster", 1)[1].strip().rstrip(".") + ".0"
    wait_until(
        lambda: [j for j in htcondor_pool.jobs("ClusterId", "JobStatus") if j["JobStatus"] == 2],
        60,
        "the blocking job running",
    )
    yield job_id
    htcondor_pool.tool("condor_rm", job_id, check=False)


def create_from_form(section, template: str, workers: int):
    section.get_by_role("button", name="New cluster").click()
    section.get_by_label("Cluster template").select_option(template)
    section.locator("input#root_workers").fill(str(workers))
    section.get_by_role("button", name="Create", exact=True).click()
    card = section.locator(".sciencelab-DaskCluster").filter(has_text=f"{template}-1")
    expect(card).to_have_count(1, timeout=60_000)
    return card


def save_panel_picture(page, path):
    """The ScienceLab panel, widened with the profile folded, for the README."""
    news_toast = page.get_by_role("button", name="No", exact=True)
    if news_toast.is_visible():
        news_toast.click()
    page.locator(".sciencelab-Panel .jp-Collapse-header").filter(has_text="Profile").click()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first.bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(560, handle["y"] + handle["height"] / 2, steps=5)
    page.mouse.up()
    page.screenshot(path=path, clip={"x": 0, "y": 0, "width": 600, "height": 800})


def test_batch_states_move_from_queued_to_connected(htcondor_pool, blocker, lab, page, screenshots):
    page.goto(f"{lab.url}/lab?token={lab.token}")
    page.locator('.jp-SideBar [data-id="sciencelab-panel"]').click(timeout=LAB_TIMEOUT_MS)
    section = page.locator(".sciencelab-DaskSection")
    expect(section).to_be_visible()

    # One core left: the held cluster's job takes it, cannot write its log, and is held.
    held = create_from_form(section, "held", 1)
    expect(held.locator(".sciencelab-DaskWorkers")).to_contain_text(
        "0 of 1 workers connected, 1 held: 'Error from ", timeout=STATES_TIMEOUT_MS
    )
    expect(held.locator(".sciencelab-DaskWorkers")).to_contain_text(": unable to establish standard output stream'")

    # Two-core workers find no slot: queued, and the panel says why on hover.
    section.get_by_role("button", name="New cluster").click()
    expect(section.locator("input#root_walltime")).to_have_attribute("max", "60")  # a batch option, bounded
    section.get_by_role("button", name="Cancel").click()
    card = create_from_form(section, "pool", 2)
    summary = card.locator(".sciencelab-DaskWorkers")
    expect(summary).to_have_text("0 of 2 workers connected, 2 queued (Idle)", timeout=STATES_TIMEOUT_MS)
    expect(summary.locator('[data-state="queued"]')).to_have_attribute(
        "title", "2 × Idle\nHTCondor found no slot for it: no match found", timeout=STATES_TIMEOUT_MS
    )
    held.locator(".sciencelab-DaskWorkerTable summary").click()
    save_panel_picture(page, screenshots / "sciencelab-dask-htcondor.png")

    # The pool frees up: the jobs start and their workers connect.
    htcondor_pool.tool("condor_rm", blocker)
    expect(summary).to_have_text("2 of 2 workers connected", timeout=STATES_TIMEOUT_MS)

    # The worker table links each job's log.
    card.locator(".sciencelab-DaskWorkerTable summary").click()
    card.locator("button.sciencelab-DaskJobLog").first.click()
    expect(page.locator(".sciencelab-DaskLogs")).to_contain_text("distributed.worker", timeout=60_000)

    for cluster in (held, card):
        cluster.get_by_role("button", name="Shut down").click()
        page.locator(".jp-Dialog").get_by_role("button", name="Shut down").click()
    expect(section.locator(".sciencelab-DaskCluster")).to_have_count(0, timeout=60_000)
