"""The GPU monitor on a real NVIDIA GPU: real NVML, a real CUDA allocation made in a notebook kernel.

Runs with `make test-gpu` on a machine with a GPU (it installs a CUDA build of PyTorch there);
skips with the reason everywhere else, CI included.
"""

import asyncio
import json
import time

import pytest

pytestmark = pytest.mark.gpu

ALLOCATION = 1024**3  # bytes the notebook puts on the GPU
ALLOCATE = (
    f"import torch\nblock = torch.empty({ALLOCATION}, dtype=torch.uint8, device='cuda')\ntorch.cuda.synchronize()\n"
)
TIMEOUT = 120


def missing_gpu_reason() -> str | None:
    """Why this machine cannot run the test, or None."""
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
    except Exception as error:  # ImportError, NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
        return f"no NVIDIA GPU here: NVML says {error!r}"
    if count == 0:
        return "no NVIDIA GPU here: NVML sees none"
    try:
        import torch
    except ImportError:
        return "needs PyTorch with CUDA in this environment: `make test-gpu` installs it where a GPU answers"
    if not torch.cuda.is_available():
        return (
            f"PyTorch {torch.__version__} here cannot use the GPU (a CPU build?); `make test-gpu` installs a CUDA one"
        )
    return None


@pytest.fixture
def real_gpu():
    """Skips the test, saying why, unless NVML sees a GPU and PyTorch can allocate on it."""
    reason = missing_gpu_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def jp_server_config():
    """Our extension with the real nvidia-ml-py; nothing is stubbed."""
    return {"ServerApp": {"jpserver_extensions": {"sciencelab": True}}}


async def test_a_notebook_allocating_cuda_memory_appears_with_its_memory(real_gpu, jp_fetch, jp_serverapp):
    created = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({"path": "gpu/allocate.ipynb", "type": "notebook", "kernel": {"name": "python3"}}),
    )
    kernel_id = json.loads(created.body)["kernel"]["id"]
    client = jp_serverapp.kernel_manager.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=TIMEOUT)
        reply = await client.execute_interactive(ALLOCATE, timeout=TIMEOUT)
        assert reply["content"]["status"] == "ok", reply["content"]

        deadline = time.monotonic() + TIMEOUT
        while True:
            current = json.loads((await jp_fetch("sciencelab", "api", "gpu")).body)["current"]
            assert current["available"], current
            ours = [row for gpu in current["gpus"] for row in gpu["processes"] if row["owner"] == "kernel"]
            if ours or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert len(ours) == 1, current
        assert ours[0]["notebook"] == "gpu/allocate.ipynb"
        assert ours[0]["kernel_id"] == kernel_id
        assert ours[0]["memory_used"] >= ALLOCATION
    finally:
        client.stop_channels()
