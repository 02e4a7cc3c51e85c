"""The GPUs of the machine the hub runs on, for the local spawner: NVML inventory and allocation.

`read_gpu_inventory` is the only I/O (NVML through `pynvml`, from nvidia-ml-py), run on a worker
thread by `LocalGpuInventory`; matching devices to the admin's GPU models and picking free ones are
pure.
"""

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from .brief_cache import BriefCache
from .profile_config import GpuModel, ProfileConfig
from .user_options import UserOptionsError

log = logging.getLogger(__name__)

# Seconds an NVML inventory is reused. Which GPUs and MIG slices a machine has changes only when an
# admin reconfigures it; which are free is the hub's own bookkeeping, never read from NVML.
INVENTORY_MAX_AGE = 10.0


class GpuUnavailableError(UserOptionsError):
    """The hub has the GPUs asked for, but not free now: 409, worth trying again later.

    GPUs the hub does not have at all are a plain `UserOptionsError` (400).
    """

    status_code = 409


class GpuInventoryError(UserOptionsError):
    """The hub cannot tell now which GPUs are free (the cluster does not answer): 503."""

    status_code = 503


@dataclass(frozen=True)
class GpuDevice:
    """A whole GPU, or one MIG slice of a GPU (`mig_profile` such as `1g.10gb`)."""

    uuid: str
    name: str  # NVML's product name, of the parent GPU for MIG slices
    mig_profile: str | None = None


@dataclass(frozen=True)
class GpuInventory:
    devices: tuple[GpuDevice, ...] = ()
    # Why there are no devices, for people: "no NVIDIA driver (NVML: Driver Not Loaded)".
    problem: str | None = None


def gpu_product_label(nvml_name: str) -> str:
    """The `nvidia.com/gpu.product` label GPU feature discovery derives from NVML's name."""
    return nvml_name.replace(" ", "-")


def device_matches(device: GpuDevice, model: GpuModel) -> bool:
    if device.mig_profile != model.mig_profile:
        return False
    return model.node_label is None or gpu_product_label(device.name) == model.node_label


def gpu_availability(inventory: GpuInventory, model: GpuModel, claimed: Collection[str]) -> tuple[int, int]:
    """(free, total) devices of `model`; `claimed` holds the UUIDs other servers hold."""
    matching = [d for d in inventory.devices if device_matches(d, model)]
    return sum(d.uuid not in claimed for d in matching), len(matching)


def no_gpu_reason(inventory: GpuInventory) -> str:
    """Why a spawn gets no GPU here, for people: the machine has none, and what NVML said."""
    return f"no GPU on this machine ({inventory.problem})" if inventory.problem else "no GPU on this machine"


def local_gpu_status(
    config: ProfileConfig, inventory: GpuInventory, claimed: Collection[str]
) -> tuple[dict[str, tuple[int, int]], str | None]:
    """(free, total) per GPU model of `config`, and why there are no GPUs at all (else None)."""
    if not inventory.devices:
        return {}, no_gpu_reason(inventory)
    return {name: gpu_availability(inventory, model, claimed) for name, model in config.gpu_models.items()}, None


def pick_gpus(inventory: GpuInventory, model: GpuModel, count: int, claimed: Collection[str]) -> tuple[str, ...]:
    """The UUIDs of `count` free devices of `model`, in NVML order.

    Raises `UserOptionsError` (400) when this machine does not have them, `GpuUnavailableError`
    (409) when they are taken.
    """
    if not inventory.devices:
        raise UserOptionsError(
            "gpu_model",
            model.name,
            f"{no_gpu_reason(inventory)}; choose a profile without GPUs",
            problem="is not available",
        )
    free = [d.uuid for d in inventory.devices if device_matches(d, model) and d.uuid not in claimed]
    _, total = gpu_availability(inventory, model, claimed)
    if total == 0:
        raise UserOptionsError(
            "gpu_model",
            model.name,
            f"this machine has no {model.display_name}; choose another profile",
            problem="is not available",
        )
    if count > total:
        raise UserOptionsError(
            "gpu_count",
            count,
            f"this machine has {total} {model.display_name}; ask for at most {total}",
            problem="is more than this machine has",
        )
    if len(free) < count:
        raise GpuUnavailableError(
            "gpu_count",
            count,
            f"{len(free)} of {total} {model.display_name} free on this machine; "
            f"ask for at most {len(free)} or try again when a GPU is released",
            problem="is more than is free",
        )
    return tuple(free[:count])


def read_gpu_inventory() -> GpuInventory:
    """The NVIDIA GPUs and MIG slices NVML sees; an empty inventory with the reason without one.

    Blocking: NVML answers in milliseconds, or seconds on a busy driver. NVML is shut down again
    after the read, so the hub holds no NVML handle between reads.
    """
    try:
        import pynvml
    except ImportError:
        return GpuInventory(problem="nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        log.info("No GPU inventory: NVML: %s", error)
        return GpuInventory(problem=f"NVML: {error}")
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            slices = _mig_slices(pynvml, handle, name)
            # A GPU in MIG mode can only be used through its slices.
            devices.extend(slices if slices is not None else [GpuDevice(pynvml.nvmlDeviceGetUUID(handle), name)])
        return GpuInventory(tuple(devices))
    except pynvml.NVMLError as error:
        log.info("No GPU inventory: NVML: %s", error)
        return GpuInventory(problem=f"NVML: {error}")
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError as error:
            log.debug("nvmlShutdown failed: %s", error)


class LocalGpuInventory(BriefCache[GpuInventory]):
    """This machine's GPUs for the hub's event loop: NVML read on a worker thread, at most every
    `max_age` seconds, one read at a time however many forms and spawns ask."""

    def __init__(self, read: Callable[[], GpuInventory] = read_gpu_inventory, max_age: float = INVENTORY_MAX_AGE):
        super().__init__(
            lambda: asyncio.to_thread(read), max_age, GpuInventory(problem="the GPUs of this machine were not read yet")
        )


_inventories: WeakKeyDictionary[asyncio.AbstractEventLoop, LocalGpuInventory] = WeakKeyDictionary()


def shared_local_inventory() -> LocalGpuInventory:
    """The one inventory of this machine for every spawner on the running event loop."""
    loop = asyncio.get_running_loop()
    if loop not in _inventories:
        _inventories[loop] = LocalGpuInventory()
    return _inventories[loop]


def _mig_slices(pynvml, handle, name: str) -> list[GpuDevice] | None:
    """The MIG slices of a GPU in MIG mode; None for a GPU not in MIG mode."""
    try:
        current_mode, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError_NotSupported:
        return None
    if current_mode != pynvml.NVML_DEVICE_MIG_ENABLE:
        return None
    slices = []
    for index in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except pynvml.NVMLError_NotFound:
            continue
        # NVML names a slice "NVIDIA A100-SXM4-80GB MIG 1g.10gb".
        profile = pynvml.nvmlDeviceGetName(mig).rsplit(" MIG ", 1)[-1]
        slices.append(GpuDevice(pynvml.nvmlDeviceGetUUID(mig), name, profile))
    return slices
