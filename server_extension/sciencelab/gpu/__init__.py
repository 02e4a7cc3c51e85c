"""The GPU monitor: one NVML sampler per server, GPU memory per notebook, idle GPUs."""

from .handlers import SAMPLER_SETTING, make_handlers
from .sampler import GpuSampler, KernelFinder
from .settings import GpuMonitorTraits

__all__ = ["SAMPLER_SETTING", "GpuMonitorTraits", "GpuSampler", "make_handlers", "make_sampler"]


def make_sampler(app: GpuMonitorTraits, serverapp) -> GpuSampler:
    """The server's one sampler, configured from the app's `gpu_*` traits."""
    return GpuSampler(
        interval=app.gpu_interval,
        history_seconds=app.gpu_history,
        idle_threshold=app.gpu_idle_threshold,
        idle_duration=app.gpu_idle_duration,
        linger=app.gpu_linger,
        find_kernels=KernelFinder(serverapp.kernel_manager, serverapp.session_manager).find,
        host_proc=app.gpu_host_proc,
        log=serverapp.log,
    )
