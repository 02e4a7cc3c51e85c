"""The GPU monitor's settings: traits of `SciencelabApp`, set as `c.SciencelabApp.gpu_*`."""

from traitlets import Bool, Float, HasTraits, TraitError, Unicode, validate

from .samples import GpuSettingsError, validate_setting


class GpuMonitorTraits(HasTraits):
    """Mixed into `SciencelabApp`, so admins configure the monitor where they configure ScienceLab."""

    gpu_monitor = Bool(
        True,
        config=True,
        help="""Run the GPU monitor: `GET /sciencelab/api/gpu`, its WebSocket stream and the lab's GPU panel.

        Default True. The monitor costs nothing while nobody looks and reports "No GPU" on servers
        without one; set False to remove its routes altogether.
        """,
    )
    gpu_interval = Float(
        1.0,
        config=True,
        help="""Seconds between two samples of every GPU, from 0.2 to 60. Default 1.

        NVML averages utilisation over 1/6 to 1 s, so sampling faster adds nothing. Users can change
        it for their own server from the lab's GPU settings. Example: `c.SciencelabApp.gpu_interval = 2`.
        """,
    )
    gpu_history = Float(
        900.0,
        config=True,
        help="""Seconds of history the server keeps for the charts, from 10 to 86400. Default 900 (15 minutes).

        Kept in memory: about 100 bytes per GPU and sample. Example: `c.SciencelabApp.gpu_history = 3600`.
        """,
    )
    gpu_idle_threshold = Float(
        5.0,
        config=True,
        help="""Utilisation in percent below which a GPU held by this server's kernels counts as idle. Default 5.

        Example: `c.SciencelabApp.gpu_idle_threshold = 10` to flag lightly used GPUs too.
        """,
    )
    gpu_idle_duration = Float(
        600.0,
        config=True,
        help="""Seconds a held GPU must stay below `gpu_idle_threshold` before it is flagged idle. Default 600.

        The lab then warns in the GPU panel and the status bar, so people release GPUs others wait for.
        """,
    )
    gpu_linger = Float(
        30.0,
        config=True,
        help="""Seconds the sampler goes on after a GET when no WebSocket listens. Default 30.

        Scripts that poll `GET /sciencelab/api/gpu` then see fresh samples and a history without paying
        a start-up per request; with neither GETs nor WebSockets the sampler stops calling NVML.
        """,
    )
    gpu_host_proc = Unicode(
        "/proc",
        config=True,
        help="""A procfs of the host's PID namespace, used to map the host PIDs NVML reports. Default "/proc".

        Inside a container NVML reports host PIDs, which the container's own /proc does not know. Mount
        the host's /proc read-only (e.g. at /host/proc) and set `c.SciencelabApp.gpu_host_proc =
        "/host/proc"`: the `NSpid` line of each GPU process then gives its PID in the container, and
        the panel names the notebook holding it. Without it such processes show as "other".
        """,
    )

    @validate("gpu_interval", "gpu_idle_threshold", "gpu_idle_duration")
    def _validate_setting(self, proposal):
        try:
            return validate_setting(proposal.trait.name.removeprefix("gpu_"), proposal.value)
        except GpuSettingsError as error:
            raise TraitError(f"SciencelabApp.gpu_{error}") from None

    @validate("gpu_history", "gpu_linger")
    def _validate_seconds(self, proposal):
        low, high = (10, 86400) if proposal.trait.name == "gpu_history" else (0, 3600)
        if not low <= proposal.value <= high:
            raise TraitError(
                f"SciencelabApp.{proposal.trait.name}: must be between {low} and {high} seconds, got {proposal.value!r}"
            )
        return proposal.value
