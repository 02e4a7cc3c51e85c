"""A stand-in for nvidia-ml-py's `pynvml` on machines without a GPU: the only mock of the GPU tests.

It implements exactly the NVML functions ScienceLab's sampler calls (and the two more that
jupyterlab-nvdashboard calls at import, for the benchmark), with NVML's error classes. The GPUs it
reports are described by the JSON file named in $FAKE_PYNVML_STATE, reread whenever it is replaced,
so a test can change them under a running server, even one in another process:

    {"driver": "550.54.15",
     "library_missing": false,            # nvmlInit raises NVMLError_LibraryNotFound (no driver)
     "gpus": [{"uuid": "GPU-0", "name": "NVIDIA A100-SXM4-80GB",
               "utilization": [45, 30],   # GPU %, memory %; null: NVMLError_NotSupported
               "memory": [used, total],   # bytes
               "temperature": 55, "power": [250000, 400000], "sm_clock": 1410, "pcie": [rx, tx],
               "processes": [[pid, used_bytes]],
               "lost": false,             # every call on this GPU raises NVMLError_GpuIsLost
               "mig": [{"uuid": "MIG-0", "name": "...", "memory": [used, total]}]}]}

`calls` counts every NVML call, so tests can tell that sampling stopped or that a GET cost none.
"""

import json
import os
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_PCIE_UTIL_TX_BYTES = 0
NVML_PCIE_UTIL_RX_BYTES = 1
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1
NVML_NVLINK_MAX_LINKS = 18


class NVMLError(Exception):
    """NVML's base error; the subclasses below are the ones the code under test tells apart."""


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_NotFound(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_Uninitialized(NVMLError):
    pass


calls = 0
_state: dict = {"gpus": []}
_state_stamp: tuple | None = None
_initialized = False


def _load_state():
    """Reread $FAKE_PYNVML_STATE when the file was replaced since the last call."""
    global _state, _state_stamp
    path = os.environ.get("FAKE_PYNVML_STATE")
    if not path:
        return
    stat = os.stat(path)
    stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    if stamp != _state_stamp:
        with open(path) as file:
            _state = json.load(file)
        _state_stamp = stamp


def _call():
    global calls
    calls += 1
    if not _initialized:
        raise NVMLError_Uninitialized("Uninitialized")


def _gpu(handle) -> dict:
    _call()
    gpu = _state["gpus"][handle.index] if handle.index < len(_state["gpus"]) else {"lost": True}
    if gpu.get("lost"):
        raise NVMLError_GpuIsLost("GPU is lost")
    return gpu if handle.mig is None else gpu["mig"][handle.mig]


def nvmlInit():
    global _initialized, calls
    calls += 1
    _load_state()
    if _state.get("library_missing"):
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
    _initialized = True


def nvmlShutdown():
    global _initialized
    _call()
    _initialized = False


def nvmlSystemGetDriverVersion():
    _call()
    return _state.get("driver", "550.54.15")


def nvmlDeviceGetCount():
    _call()
    _load_state()
    return len(_state["gpus"])


def nvmlDeviceGetHandleByIndex(index):
    _call()
    return SimpleNamespace(index=index, mig=None)


def nvmlDeviceGetUUID(handle):
    return _gpu(handle)["uuid"]


def nvmlDeviceGetName(handle):
    return _gpu(handle)["name"]


def nvmlDeviceGetUtilizationRates(handle):
    utilization = _gpu(handle).get("utilization")
    if utilization is None or handle.mig is not None:
        raise NVMLError_NotSupported("Not Supported")
    return SimpleNamespace(gpu=utilization[0], memory=utilization[1])


def nvmlDeviceGetMemoryInfo(handle, version=None):
    used, total = _gpu(handle)["memory"]
    return SimpleNamespace(used=used, total=total, free=total - used)


def nvmlDeviceGetTemperature(handle, sensor):
    return _gpu(handle)["temperature"]


def nvmlDeviceGetPowerUsage(handle):
    return _gpu(handle)["power"][0]


def nvmlDeviceGetEnforcedPowerLimit(handle):
    return _gpu(handle)["power"][1]


def nvmlDeviceGetClockInfo(handle, type):
    return _gpu(handle)["sm_clock"]


def nvmlDeviceGetPcieThroughput(device, counter):
    rx, tx = _gpu(device)["pcie"]
    return rx if counter == NVML_PCIE_UTIL_RX_BYTES else tx


def nvmlDeviceGetMigMode(device):
    if _gpu(device).get("mig") is None:
        raise NVMLError_NotSupported("Not Supported")
    return [NVML_DEVICE_MIG_ENABLE, NVML_DEVICE_MIG_ENABLE]


def nvmlDeviceGetMaxMigDeviceCount(device):
    _gpu(device)
    return 7


def nvmlDeviceGetMigDeviceHandleByIndex(device, index):
    if index >= len(_gpu(device)["mig"]):
        raise NVMLError_NotFound("Not Found")
    return SimpleNamespace(index=device.index, mig=index)


def nvmlDeviceGetComputeRunningProcesses(handle):
    return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in _gpu(handle).get("processes", [])]


# Called by jupyterlab-nvdashboard when it is imported (bench/gpu_stream.py runs it as the peer).


def nvmlDeviceGetNvLinkVersion(device, link):
    _gpu(device)
    raise NVMLError_NotSupported("Not Supported")


def nvmlDeviceGetMaxPcieLinkGeneration(device):
    _gpu(device)
    return 4
