"""Read every GPU once through NVML (`nvidia-ml-py`'s `pynvml`); called on the sampler's thread.

The functions take the `pynvml` module as an argument, so the sampler decides when it is imported
and tests hand in their stub at exactly that boundary.
"""

from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

from .samples import MIG_UTILIZATION_NOTE, UNSUPPORTED_NOTE

T = TypeVar("T")


def if_supported(nvml: ModuleType, call: Callable[..., T], *args) -> T | None:
    """`call(*args)`, or None where this GPU does not report the value (NVML's NotSupported)."""
    try:
        return call(*args)
    except nvml.NVMLError_NotSupported:
        return None


def read_utilization(nvml: ModuleType, handle, unsupported_note: str) -> tuple[dict | None, str | None]:
    """GPU and memory utilisation in percent, or None with a note saying why it is missing."""
    rates = if_supported(nvml, nvml.nvmlDeviceGetUtilizationRates, handle)
    if rates is None:
        return None, unsupported_note
    return {"gpu": rates.gpu, "memory": rates.memory}, None


def read_memory(nvml: ModuleType, handle) -> dict:
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    return {"used": memory.used, "total": memory.total}


def read_mig_devices(nvml: ModuleType, handle) -> list[dict]:
    """The MIG devices of a GPU in MIG mode; an empty list for GPUs without MIG or with MIG off."""
    mode = if_supported(nvml, nvml.nvmlDeviceGetMigMode, handle)
    if mode is None or mode[0] != nvml.NVML_DEVICE_MIG_ENABLE:
        return []
    devices = []
    for index in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except nvml.NVMLError_NotFound:
            continue  # an empty MIG slot
        utilization, note = read_utilization(nvml, mig, MIG_UTILIZATION_NOTE)
        devices.append(
            {
                "index": index,
                "uuid": nvml.nvmlDeviceGetUUID(mig),
                "name": nvml.nvmlDeviceGetName(mig),
                "memory": read_memory(nvml, mig),
                "utilization": utilization,
                "utilization_note": note,
            }
        )
    return devices


def read_gpu(nvml: ModuleType, index: int) -> tuple[dict, list[tuple[int, int | None]]]:
    """One GPU's figures and its compute processes as (host PID, bytes used) pairs.

    Kernels allocate through CUDA, which NVML lists as compute processes; graphics (display)
    processes are not notebooks.
    """
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    mig_devices = read_mig_devices(nvml, handle)
    # A GPU in MIG mode reports no utilisation of its own; its MIG devices might.
    utilization, note = read_utilization(nvml, handle, MIG_UTILIZATION_NOTE if mig_devices else UNSUPPORTED_NOTE)
    power = if_supported(nvml, nvml.nvmlDeviceGetPowerUsage, handle)
    power_limit = if_supported(nvml, nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
    rx = if_supported(nvml, nvml.nvmlDeviceGetPcieThroughput, handle, nvml.NVML_PCIE_UTIL_RX_BYTES)
    tx = if_supported(nvml, nvml.nvmlDeviceGetPcieThroughput, handle, nvml.NVML_PCIE_UTIL_TX_BYTES)
    gpu = {
        "index": index,
        "uuid": nvml.nvmlDeviceGetUUID(handle),
        "name": nvml.nvmlDeviceGetName(handle),
        "utilization": utilization,
        "utilization_note": note,
        "memory": read_memory(nvml, handle),
        "temperature_c": if_supported(nvml, nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
        "power_w": None if power is None else power / 1000,  # NVML reports milliwatts
        "power_limit_w": None if power_limit is None else power_limit / 1000,
        "sm_clock_mhz": if_supported(nvml, nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
        "pcie_rx_kib_s": rx,
        "pcie_tx_kib_s": tx,
        "mig_devices": mig_devices,
    }
    running = if_supported(nvml, nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
    return gpu, [(process.pid, process.usedGpuMemory) for process in running]


def read_all(nvml: ModuleType) -> tuple[str, list[tuple[dict, list[tuple[int, int | None]]]]]:
    """The driver version and every GPU with its processes; NVML errors propagate to the sampler."""
    return nvml.nvmlSystemGetDriverVersion(), [read_gpu(nvml, index) for index in range(nvml.nvmlDeviceGetCount())]
