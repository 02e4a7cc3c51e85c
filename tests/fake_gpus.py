"""GPUs for the `pynvml` stub in tests/fake_nvml: its state file, and how to load it in-process.

Tests, the browser test and bench/gpu_stream.py describe the GPUs they want here; the stub reads
them from the JSON file named in $FAKE_PYNVML_STATE (see tests/fake_nvml/pynvml.py).
"""

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

FAKE_NVML_DIR = Path(__file__).resolve().parent / "fake_nvml"
GIB = 1024**3
# Host PIDs of a pretend container host: far above any PID of this machine (pid_max <= 2**22).
HOST_PID_OFFSET = 10_000_000


def make_gpu(index: int, **overrides) -> dict:
    """An A100-like GPU for the stub's state; `overrides` replace fields (see the stub's docstring)."""
    return {
        "uuid": f"GPU-{index:08d}-fake",
        "name": "NVIDIA A100-SXM4-80GB",
        "utilization": [45, 30],
        "memory": [12 * GIB, 80 * GIB],
        "temperature": 55,
        "power": [250_000, 400_000],
        "sm_clock": 1410,
        "pcie": [1024, 2048],
        "processes": [],
        **overrides,
    }


class FakeNvml:
    """The stub's state file: `set(...)` replaces it atomically, so the stub rereads it whole."""

    def __init__(self, path: Path):
        self.path = path

    @property
    def environ(self) -> dict[str, str]:
        """What a server process in another process needs to use the stub with this state."""
        return {
            "FAKE_PYNVML_STATE": str(self.path),
            "PYTHONPATH": os.pathsep.join([str(FAKE_NVML_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]),
        }

    def set(self, gpus: list[dict], **fields):
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"driver": "550.54.15", "gpus": gpus, **fields}))
        os.replace(temporary, self.path)


def load_stub_module() -> ModuleType:
    """A fresh copy of the stub module, to be put in `sys.modules["pynvml"]` by a test."""
    spec = importlib.util.spec_from_file_location("pynvml", FAKE_NVML_DIR / "pynvml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def use_stub_in_this_process(monkeypatch, fake: FakeNvml) -> ModuleType:
    """A fresh stub reading `fake`'s state, as `pynvml` of this process until the test ends."""
    monkeypatch.setenv("FAKE_PYNVML_STATE", str(fake.path))
    module = load_stub_module()
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return module


def write_host_status(host_proc: Path, host_pid: int, local_pid: int):
    """What a host's /proc shows of a container process: `NSpid: <host pid> <pid in the container>`."""
    folder = host_proc / str(host_pid)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "status").write_text(
        f"Name:\tpython\nTgid:\t{host_pid}\nPid:\t{host_pid}\nNSpid:\t{host_pid}\t{local_pid}\n"
    )
