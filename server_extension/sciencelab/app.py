"""The `sciencelab` Jupyter server extension application."""

import os

from jupyter_server.extension.application import ExtensionApp

from . import gpu
from .handlers import make_handlers
from .info import make_info


class SciencelabApp(gpu.GpuMonitorTraits, ExtensionApp):
    """Registers ScienceLab's REST API under `<base_url>/sciencelab/api/`."""

    name = "sciencelab"

    def initialize_settings(self):
        # The info document cannot change while the server runs: compute it once.
        self.settings["sciencelab_info"] = make_info(os.environ, {"gpu_monitor": self.gpu_monitor})
        if self.gpu_monitor:
            self.settings[gpu.SAMPLER_SETTING] = gpu.make_sampler(self, self.serverapp)

    def initialize_handlers(self):
        self.handlers.extend(make_handlers())
        if self.gpu_monitor:
            self.handlers.extend(gpu.make_handlers())

    async def stop_extension(self):
        if gpu.SAMPLER_SETTING in self.settings:
            await self.settings[gpu.SAMPLER_SETTING].stop()
