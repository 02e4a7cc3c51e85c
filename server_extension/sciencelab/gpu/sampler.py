"""`GpuSampler`: one per server process, NVML off the event loop, history, paused while nobody listens."""

import asyncio
import importlib
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

from . import nvml as nvml_reader
from .procfs import read_parents, read_statuses
from .samples import (
    KernelRef,
    attribute_processes,
    describe_nvml_error,
    make_history_point,
    make_host_pid_map,
    make_kernel_owners,
    make_sample,
    make_unavailable,
    update_idle,
)

NO_GPU_REASON = "No GPU: the NVIDIA driver is loaded but NVML sees no GPU on this server."
NO_BINDINGS_REASON = "The GPU monitor needs the nvidia-ml-py package (import pynvml), which is not installed."

# Receives each sample as UTF-8 JSON, encoded once for every listener.
Listener = Callable[[bytes], None]


def import_pynvml() -> ModuleType:
    """The `pynvml` module of nvidia-ml-py: the one place NVML enters, so tests stub exactly this."""
    return importlib.import_module("pynvml")


# How long the notebooks of known kernels are trusted: a session keeps its kernel when its notebook
# is renamed, so a new name shows within this many seconds.
NOTEBOOKS_MAX_AGE = 10.0


class KernelFinder:
    """This server's local kernels by PID, with the notebook each session opened them for.

    The sessions are read again only when a kernel has none known yet or the notebooks are
    `notebooks_max_age` seconds old: reading them (jupyter_server's SQLite session table, a model
    per session) at every tick was a seventh of the GPU stream's CPU (py-spy), while a kernel gets
    its session when it starts and keeps it.
    """

    def __init__(
        self,
        kernel_manager,
        session_manager,
        notebooks_max_age: float = NOTEBOOKS_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._kernel_manager = kernel_manager
        self._session_manager = session_manager
        self._notebooks_max_age = notebooks_max_age
        self._clock = clock
        self._notebooks: dict[str, str | None] = {}  # by kernel id, for the kernels that have a session
        self._notebooks_until = -math.inf

    async def find(self) -> dict[int, KernelRef]:
        kernel_ids = self._kernel_manager.list_kernel_ids()
        # A kernel without a session may be one whose session is being saved: read again until it has one.
        if kernel_ids and (
            self._clock() >= self._notebooks_until or any(kernel_id not in self._notebooks for kernel_id in kernel_ids)
        ):
            await self._read_notebooks()
        kernels = {}
        for kernel_id in kernel_ids:
            try:
                kernel = self._kernel_manager.get_kernel(kernel_id)
            except KeyError:
                continue  # shut down while we looked
            # Local kernels run under a LocalProvisioner whose `process` is the Popen; remote kernels
            # (gateway, Kubernetes) have no PID here, so their GPUs show as "other". Looked up at
            # every tick: a restarted kernel keeps its id and gets a new process.
            pid = getattr(getattr(kernel.provisioner, "process", None), "pid", None)
            if pid:
                kernels[pid] = KernelRef(kernel_id, kernel.kernel_name, self._notebooks.get(kernel_id))
        return kernels

    async def _read_notebooks(self):
        sessions = await self._session_manager.list_sessions()
        self._notebooks = {
            session["kernel"]["id"]: session.get("path") for session in sessions if session.get("kernel")
        }
        self._notebooks_until = self._clock() + self._notebooks_max_age


class GpuSampler:
    """Samples every GPU at `interval` seconds while a WebSocket listens or a GET asked lately.

    NVML is initialised once, on the sampler's own thread, and only again after it failed; every
    listener gets the same encoded message, so the cost of a tick does not grow with the clients.
    """

    def __init__(
        self,
        *,
        interval: float,
        history_seconds: float,
        idle_threshold: float,
        idle_duration: float,
        linger: float,
        find_kernels: Callable[[], Awaitable[dict[int, KernelRef]]],
        proc: str = "/proc",
        host_proc: str = "/proc",
        load_nvml: Callable[[], ModuleType] = import_pynvml,
        log: logging.Logger | None = None,
    ):
        self.interval = interval
        self.history_seconds = history_seconds
        self.idle_threshold = idle_threshold
        self.idle_duration = idle_duration
        self.linger = linger
        self._find_kernels = find_kernels
        self._proc = proc
        self._host_proc = host_proc
        self._load_nvml = load_nvml
        self._log = log or logging.getLogger(__name__)
        self._nvml: ModuleType | None = None  # set once nvmlInit succeeded
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sciencelab-gpu")
        self._history: deque[dict] = deque(maxlen=self._history_length())
        self._below_since: dict[str, float] = {}
        self._listeners: set[Listener] = set()
        self._latest: dict | None = None
        self._latest_message: bytes | None = None
        self._demand_until = 0.0
        self._task: asyncio.Task | None = None
        self._ticked = asyncio.Event()
        self._woken: asyncio.Future | None = None  # the sleep between two ticks ends with it
        self.ticks = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def settings(self) -> dict:
        return {
            "interval": self.interval,
            "history_seconds": self.history_seconds,
            "idle_threshold": self.idle_threshold,
            "idle_duration": self.idle_duration,
        }

    def configure(
        self, interval: float | None = None, idle_threshold: float | None = None, idle_duration: float | None = None
    ):
        """Apply validated settings; a new interval takes effect at once and keeps the history."""
        if interval is not None:
            self.interval = interval
            self._history = deque(self._history, maxlen=self._history_length())
        if idle_threshold is not None:
            self.idle_threshold = idle_threshold
        if idle_duration is not None:
            self.idle_duration = idle_duration
        # At once: the next tick comes with the new settings.
        self._wake()

    def subscribe(self, listener: Listener) -> bytes | None:
        """Send every sample to `listener` from now on; returns the current one if it is fresh."""
        self._listeners.add(listener)
        self._ensure_running()
        return self._latest_message if self._is_fresh() else None

    def unsubscribe(self, listener: Listener):
        """Stop sending to `listener`; sampling pauses after the last one unless a GET asked lately."""
        self._listeners.discard(listener)

    async def snapshot(self) -> dict:
        """The current sample and the history window, for `GET /sciencelab/api/gpu`.

        A fresh sample is reused; after a pause the GET waits for the first tick. Either way a GET
        costs no NVML call of its own.
        """
        self._demand_until = time.monotonic() + self.linger
        self._ensure_running()
        if not self._is_fresh():
            self._ticked.clear()
            await self._ticked.wait()
        horizon = self._latest["time"] - self.history_seconds
        return {
            "current": self._latest,
            "history": [point for point in self._history if point["time"] >= horizon],
            "settings": self.settings(),
        }

    async def stop(self):
        """Stop sampling and release NVML; called when the server stops."""
        self._listeners.clear()
        self._demand_until = 0.0
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await asyncio.get_running_loop().run_in_executor(self._executor, self._shutdown_nvml)
        self._executor.shutdown(wait=True)

    def _history_length(self) -> int:
        return math.ceil(self.history_seconds / self.interval) + 1

    def _is_fresh(self) -> bool:
        # Two intervals: a sample is never older than one while the sampler runs.
        return self._latest is not None and self.running and time.time() - self._latest["time"] < 2 * self.interval

    def _wanted(self) -> bool:
        return bool(self._listeners) or time.monotonic() < self._demand_until

    def _ensure_running(self):
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        loop = asyncio.get_running_loop()
        # Nobody watched during the pause: idle clocks start again rather than span a gap we did not see.
        self._below_since = {}
        while self._wanted():
            started = loop.time()
            try:
                kernels = await self._find_kernels()
                sample, message = await loop.run_in_executor(self._executor, self.read_message, kernels)
            except Exception as error:
                # A bug of ours must not end the stream: say so in the panel, log the traceback.
                self._log.exception("GPU sampler tick failed")
                sample = make_unavailable(time.time(), f"The GPU monitor failed: {error!r}; see the server log.")
                message = json.dumps(sample).encode()
            self._publish(sample, message)
            await self._sleep_until(loop, started + self.interval)
        self._log.debug("GPU sampler paused: nobody listens")

    async def _sleep_until(self, loop: asyncio.AbstractEventLoop, due: float):
        """Until `due` (the loop's clock) or a new setting (`configure`), whichever comes first.

        A future and a timer: `asyncio.wait_for` on an `asyncio.Event` made, and at its timeout
        cancelled, a Task of its own at every tick.
        """
        self._woken = loop.create_future()
        timer = loop.call_at(due, self._wake)
        try:
            await self._woken
        finally:
            timer.cancel()

    def _wake(self):
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    def _publish(self, sample: dict, message: bytes):
        self.ticks += 1
        self._latest = sample
        self._latest_message = message
        self._history.append(make_history_point(sample))
        self._ticked.set()
        for listener in list(self._listeners):
            listener(self._latest_message)

    # Everything below runs on the sampler's thread.

    def read_message(self, kernels: dict[int, KernelRef]) -> tuple[dict, bytes]:
        """A tick's sample and its JSON for the listeners, encoded here rather than on the event loop."""
        sample = self.read_sample(kernels)
        return sample, json.dumps(sample).encode()

    def read_sample(self, kernels: dict[int, KernelRef]) -> dict:
        """One tick's work on the sampler's thread: NVML, /proc and the pure core (bench/ times it)."""
        now = time.time()
        try:
            nvml = self._init_nvml()
        except ImportError:
            return make_unavailable(now, NO_BINDINGS_REASON)
        except Exception as error:  # NVMLError and its subclasses; the module may not be importable
            return make_unavailable(now, describe_nvml_error(error))
        try:
            driver, read = nvml_reader.read_all(nvml)
        except nvml.NVMLError as error:
            # A lost GPU or a reloaded driver: start NVML afresh at the next tick.
            self._shutdown_nvml()
            return make_unavailable(now, describe_nvml_error(error))
        if not read:
            return make_unavailable(now, NO_GPU_REASON)
        gpus = self._attribute(read, kernels)
        self._below_since, idle = update_idle(self._below_since, gpus, now, self.idle_threshold, self.idle_duration)
        return make_sample(now, gpus, idle, driver)

    def _attribute(self, read: list[tuple[dict, list]], kernels: dict[int, KernelRef]) -> list[dict]:
        host_pids = {pid for _, processes in read for pid, _ in processes}
        host_to_local, owners = {}, {}
        if host_pids:
            host_to_local = make_host_pid_map(read_statuses(self._host_proc, host_pids))
            if kernels:
                owners = make_kernel_owners(read_parents(self._proc, kernels), kernels)
        return [{**gpu, "processes": attribute_processes(processes, host_to_local, owners)} for gpu, processes in read]

    def _init_nvml(self) -> ModuleType:
        if self._nvml is None:
            nvml = self._load_nvml()
            nvml.nvmlInit()
            self._nvml = nvml
        return self._nvml

    def _shutdown_nvml(self):
        nvml, self._nvml = self._nvml, None
        if nvml is not None:
            try:
                nvml.nvmlShutdown()
            except nvml.NVMLError as error:
                self._log.debug("nvmlShutdown failed: %s", error)
