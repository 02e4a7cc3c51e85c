"""The GPU monitor's pure core: sample records, which notebook holds which GPU memory, idle GPUs.

Nothing here calls NVML or reads /proc; the sampler hands in what it read and gets plain dicts back,
which are exactly what `GET /sciencelab/api/gpu` and the WebSocket stream send.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..request_json import cut, shown

MIG_UTILIZATION_NOTE = "not reported for MIG"
UNSUPPORTED_NOTE = "not reported by this GPU"

# What `PATCH /sciencelab/api/gpu` accepts and the `SciencelabApp.gpu_*` traits allow: one table
# drives both validations, the error messages and the API documentation in the README.
SETTINGS_SCHEMA = {
    "interval": {
        "minimum": 0.2,
        "maximum": 60.0,
        "unit": "seconds",
        "example": 1,
        "description": "Seconds between two NVML samples. NVML averages utilisation over 1/6 to 1 s, "
        "so going below 0.2 s adds nothing.",
    },
    "idle_threshold": {
        "minimum": 0.0,
        "maximum": 100.0,
        "unit": "percent",
        "example": 5,
        "description": "A GPU held by this server's kernels counts as idle while its utilisation is below this.",
    },
    "idle_duration": {
        "minimum": 1.0,
        "maximum": 86400.0,
        "unit": "seconds",
        "example": 600,
        "description": "How long a held GPU must stay below the idle threshold before it is flagged idle.",
    },
}


class GpuSettingsError(ValueError):
    """A GPU monitor setting out of range or of the wrong type; the message names field and value."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{cut(field)}: {message}")
        self.field = field


def validate_setting(field: str, value: object) -> float:
    """`value` as a float if `field` allows it, else `GpuSettingsError` naming field, value and range."""
    rule = SETTINGS_SCHEMA.get(field)
    if rule is None:
        raise GpuSettingsError(field, f"not a GPU monitor setting; choose from: {', '.join(SETTINGS_SCHEMA)}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GpuSettingsError(
            field, f"expected a number of {rule['unit']} such as {rule['example']}, got {shown(value)}"
        )
    if not rule["minimum"] <= value <= rule["maximum"]:
        raise GpuSettingsError(
            field, f"must be between {rule['minimum']:g} and {rule['maximum']:g} {rule['unit']}, got {shown(value)}"
        )
    return float(value)


def validate_settings(body: object) -> dict[str, float]:
    """The settings a client asked for, validated; the first wrong field raises `GpuSettingsError`."""
    if not isinstance(body, dict) or not body:
        raise GpuSettingsError(
            "body", f"expected a JSON object with some of: {', '.join(SETTINGS_SCHEMA)}, got {shown(body)}"
        )
    return {field: validate_setting(field, value) for field, value in body.items()}


@dataclass(frozen=True)
class KernelRef:
    """A kernel of this server, as the GPU panel names it."""

    kernel_id: str
    kernel_name: str
    notebook: str | None  # the session path, e.g. "analysis/fit.ipynb"; None for a kernel without session


def parse_nspid(status_text: str) -> tuple[int, ...]:
    """The `NSpid:` line of a `/proc/<pid>/status`: the PID in each PID namespace, outermost first."""
    for line in status_text.splitlines():
        if line.startswith("NSpid:"):
            return tuple(int(pid) for pid in line.split()[1:])
    return ()


def make_host_pid_map(statuses: Mapping[int, str]) -> dict[int, int]:
    """Map the PIDs NVML reports to PIDs in this server's namespace.

    `statuses` holds `/proc/<pid>/status` texts read from a procfs of the host's namespace, keyed by
    that PID. NVML reports host PIDs; inside a container the innermost NSpid entry is the PID the
    server and its kernels see. Outside containers NSpid has one entry and the map is the identity.
    """
    host_to_local = {}
    for host_pid, text in statuses.items():
        nspid = parse_nspid(text)
        host_to_local[host_pid] = nspid[-1] if nspid else host_pid
    return host_to_local


def make_kernel_owners(parents: Mapping[int, int], kernels: Mapping[int, KernelRef]) -> dict[int, KernelRef]:
    """Every PID in a kernel's process tree (the kernel and what it started), mapped to that kernel.

    `parents` maps PID -> parent PID for the processes of this server's namespace; a GPU can be held
    by a worker that a notebook started (multiprocessing, a subprocess), not only by the kernel.
    """
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    owners = {}
    for kernel_pid, kernel in kernels.items():
        pending = [kernel_pid]
        while pending:
            pid = pending.pop()
            if pid not in owners:
                owners[pid] = kernel
                pending.extend(children.get(pid, ()))
    return owners


def attribute_processes(
    processes: Iterable[tuple[int, int | None]],
    host_to_local: Mapping[int, int],
    owners: Mapping[int, KernelRef],
) -> list[dict]:
    """The process table of one GPU: (host PID, bytes used) pairs named by the kernel that holds them.

    Processes outside this server's kernels are "other", without PID or name: they may belong to
    other users, who should not learn more than that the memory is taken.
    """
    rows = []
    for host_pid, used in processes:
        kernel = owners.get(host_to_local.get(host_pid, -1))
        if kernel is None:
            rows.append({"owner": "other", "pid": None, "memory_used": used})
        else:
            rows.append(
                {
                    "owner": "kernel",
                    "pid": host_to_local[host_pid],
                    "memory_used": used,
                    "kernel_id": kernel.kernel_id,
                    "kernel_name": kernel.kernel_name,
                    "notebook": kernel.notebook,
                }
            )
    rows.sort(key=lambda row: (row["owner"] != "kernel", -(row["memory_used"] or 0)))
    return rows


def update_idle(
    below_since: Mapping[str, float], gpus: Iterable[dict], now: float, threshold: float, duration: float
) -> tuple[dict[str, float], dict[str, dict]]:
    """Idle detection for one sample; returns the new `below_since` state and each GPU's idle record.

    A GPU is *held* when one of this server's kernels has memory on it (a MIG device's processes
    count for its parent GPU). It is flagged idle once it has been held and below `threshold` percent
    utilisation for `duration` seconds. A GPU whose utilisation NVML does not report (MIG) is never
    flagged: we cannot tell.
    """
    state = {}
    records = {}
    for gpu in gpus:
        uuid = gpu["uuid"]
        held = any(row["owner"] == "kernel" for row in gpu["processes"])
        utilization = gpu["utilization"]
        since = None
        if held and utilization is not None and utilization["gpu"] < threshold:
            since = below_since.get(uuid, now)
            state[uuid] = since
        records[uuid] = {
            "held": held,
            "below_threshold_since": since,
            "flagged": since is not None and now - since >= duration,
        }
    return state, records


def make_sample(time: float, gpus: list[dict], idle: Mapping[str, dict], driver: str | None) -> dict:
    """The record of one tick when NVML answered: every GPU with its idle record."""
    return {
        "available": True,
        "time": time,
        "driver": driver,
        "gpus": [{**gpu, "idle": idle[gpu["uuid"]]} for gpu in gpus],
    }


def make_unavailable(time: float, reason: str) -> dict:
    """The record of one tick without GPU data, with a reason people can act on."""
    return {"available": False, "time": time, "reason": reason}


def make_history_point(sample: Mapping) -> dict:
    """What the history keeps of a sample: per GPU its utilisation and memory, enough for the charts."""
    gpus = []
    for gpu in sample.get("gpus", ()):
        utilization = gpu["utilization"]
        gpus.append(
            {
                "uuid": gpu["uuid"],
                "utilization": None if utilization is None else utilization["gpu"],
                "memory_used": gpu["memory"]["used"],
            }
        )
    return {"time": sample["time"], "gpus": gpus}


NVML_ERROR_REASONS = {
    "NVMLError_LibraryNotFound": "No NVIDIA driver: the NVML library (libnvidia-ml.so.1) is not installed "
    "on this server, so there is no GPU to monitor.",
    "NVMLError_DriverNotLoaded": "The NVIDIA driver is not loaded on this server: no GPU is usable.",
    "NVMLError_NoPermission": "NVML refused access to the GPU (no permission); ask your admin to expose "
    "the GPU device files to this server.",
    "NVMLError_GpuIsLost": "A GPU fell off the bus or stopped answering; the monitor retries every sample.",
    "NVMLError_Uninitialized": "NVML is not initialised; the monitor retries every sample.",
}


def describe_nvml_error(error: BaseException) -> str:
    """A sentence for people about an NVML failure; unknown errors keep NVML's own text."""
    reason = NVML_ERROR_REASONS.get(type(error).__name__)
    return reason if reason else f"NVML failed: {error}. The monitor retries every sample."
