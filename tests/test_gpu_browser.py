"""The GPU panel and status-bar item in Debian's Chromium, on a real `jupyter lab` with the pynvml stub."""

import math
import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import LAB_TIMEOUT_MS
from .fake_gpus import GIB, HOST_PID_OFFSET, FakeNvml, make_gpu, write_host_status
from .lab_server import LabServer

pytestmark = pytest.mark.browser

MIG_GPU = make_gpu(
    1,
    name="NVIDIA A100-SXM4-40GB",
    utilization=None,
    memory=[9 * GIB, 40 * GIB],
    processes=[[4_000_123, 9 * GIB]],
    mig=[
        {"uuid": "MIG-aaaa", "name": "A100 MIG 3g.20gb", "memory": [9 * GIB, 20 * GIB]},
        {"uuid": "MIG-bbbb", "name": "A100 MIG 3g.20gb", "memory": [0, 20 * GIB]},
    ],
)


@pytest.fixture
def gpu_lab(tmp_path):
    """A plain `jupyter lab` on 127.0.0.1 (token auth, no hub) whose `pynvml` is the stub.

    The stub comes first on PYTHONPATH; `--SciencelabApp.gpu_host_proc` points at the NSpid mapping
    fixture, a folder standing for the host's /proc. Samples every 0.5 s, flags idle after 2 s.
    Yields (server, fake NVML, host proc folder); the server and its kernels stop afterwards.
    """
    fake = FakeNvml(tmp_path / "fake-nvml.json")
    fake.set([make_gpu(0), MIG_GPU])
    host_proc = tmp_path / "host-proc"
    host_proc.mkdir()
    server = LabServer(
        tmp_path / "lab",
        env=fake.environ,
        args=[
            "--SciencelabApp.gpu_interval=0.5",
            "--SciencelabApp.gpu_idle_duration=2",
            f"--SciencelabApp.gpu_host_proc={host_proc}",
        ],
    ).start()
    yield server, fake, host_proc
    server.stop()
    print(f"jupyter lab log: {server.log_path}")


@pytest.fixture
def gpu_screenshot_path(tmp_path) -> Path:
    """Where the test saves its screenshot: $SCIENCELAB_SCREENSHOT_DIR (`make screenshot` sets docs/)."""
    folder = Path(os.environ.get("SCIENCELAB_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "sciencelab-gpu.png"


def test_gpu_panel_names_the_notebook_charts_history_and_warns_when_idle(gpu_lab, page, gpu_screenshot_path):
    server, fake, host_proc = gpu_lab
    session = server.request(
        "POST", "/api/sessions", {"path": "analysis/fit.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    ).json()
    kernel_pid = server.kernel_pid(session["kernel"]["id"])
    host_pid = HOST_PID_OFFSET + kernel_pid
    write_host_status(host_proc, host_pid, kernel_pid)

    def held_gpu(utilization: int, memory_gib: float) -> dict:
        return make_gpu(
            0,
            utilization=[utilization, utilization // 2],
            memory=[int(memory_gib * GIB), 80 * GIB],
            processes=[[host_pid, int(memory_gib * GIB) - GIB], [4_000_456, GIB]],
        )

    fake.set([held_gpu(45, 12.3), MIG_GPU])
    page.goto(f"{server.url}/lab?token={server.token}")
    status = page.locator(".sciencelab-GpuStatus-text")
    expect(status).to_have_text("GPU 45% · 12.3/80 GiB", timeout=LAB_TIMEOUT_MS)

    page.set_viewport_size({"width": 1280, "height": 1000})
    page.locator('.jp-SideBar [data-id="sciencelab-panel"]').click()
    page.locator(".sciencelab-Panel .jp-Collapse-header", has_text="Profile").click()  # fold it: room for the GPUs
    panel = page.locator(".sciencelab-GpuPanel")
    expect(panel).to_be_visible()
    first = panel.locator(".sciencelab-Gpu").first
    expect(first.locator("h4")).to_have_text("GPU 0 · NVIDIA A100-SXM4-80GB")
    expect(first.locator(".sciencelab-GpuProcesses tbody tr").first).to_contain_text("analysis/fit.ipynb")
    expect(first.locator(".sciencelab-GpuProcesses tbody tr").nth(1)).to_contain_text("other")
    expect(panel.locator(".sciencelab-GpuMig")).to_contain_text("not reported for MIG")
    expect(first.locator(".sciencelab-GpuChart canvas")).to_have_count(1)

    # A few seconds of a busy GPU for the chart, then the notebook leaves it idle.
    for step in range(16):
        fake.set([held_gpu(int(55 + 35 * math.sin(step / 2.5)), 12.3 + step / 2), MIG_GPU])
        time.sleep(0.5)
    fake.set([held_gpu(2, 20.3), MIG_GPU])
    expect(status).to_have_text("GPU 2% · 20.3/80 GiB · idle", timeout=10_000)
    expect(status).to_have_class("sciencelab-GpuStatus-text sciencelab-mod-idle")
    expect(first.locator(".sciencelab-GpuIdle")).to_contain_text("your kernels hold this GPU")
    page.screenshot(path=gpu_screenshot_path)

    # The GPU falls off the bus: the panel says so, the status item hides; it all comes back.
    fake.set([{**held_gpu(2, 20.3), "lost": True}, MIG_GPU])
    expect(panel.locator(".sciencelab-GpuUnavailable")).to_contain_text("A GPU fell off the bus", timeout=10_000)
    expect(status).to_be_hidden()
    fake.set([held_gpu(60, 13), MIG_GPU])
    expect(status).to_have_text("GPU 60% · 13/80 GiB", timeout=10_000)
    expect(panel.locator(".sciencelab-Gpu")).to_have_count(2)
