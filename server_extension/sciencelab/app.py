"""The `sciencelab` Jupyter server extension application."""

import asyncio
import os
import signal
from typing import ClassVar

from jupyter_server.extension.application import ExtensionApp
from traitlets import Int

from . import gpu
from .collaboration import install_collaboration_page_config
from .compat.jupyter_server_ydoc import start_room_server
from .dask.connect import DASHBOARD_LINK_ENV, make_dashboard_link
from .dask.handlers import make_handlers as make_dask_handlers
from .dask.manager import ClusterManager
from .guest_access import GuestAccess, install_guest_access
from .guest_access import make_handlers as make_guest_access_handlers
from .handlers import make_handlers
from .info import make_info
from .proxy_guard import install_proxy_guard
from .request_json import MAX_BYTES_SETTING
from .session import SESSION_SETTING, ActivityReporter, SessionRelay, activity_check_interval, make_gpu_busy
from .session import make_handlers as make_session_handlers
from .shares import SHARES_SETTING, ShareRelay
from .shares import make_handlers as make_share_handlers


class SciencelabApp(gpu.GpuMonitorTraits, ExtensionApp):
    """Registers ScienceLab's REST API under `<base_url>/sciencelab/api/`."""

    name = "sciencelab"
    classes: ClassVar[list] = [ClusterManager, GuestAccess]
    # Marks busy kernels and GPUs as activity while the server runs (session.py).
    _activity: ActivityReporter | None = None
    # Guests of a shared server lose it within seconds of a revocation (guest_access.py).
    _guest_access: GuestAccess | None = None
    _room_server: asyncio.Task | None = None

    max_request_bytes = Int(
        64 * 1024,
        min=1,
        config=True,
        help="""The largest JSON request body or WebSocket message ScienceLab's API reads, in bytes.

        Default 65536 (64 KiB): a cluster or GPU monitor request is a few hundred bytes. A larger
        one is answered with 400 naming the limit. Example: `c.SciencelabApp.max_request_bytes = 262144`.
        """,
    )

    def initialize_settings(self):
        self.settings[MAX_BYTES_SETTING] = self.max_request_bytes
        # The info document cannot change while the server runs: compute it once.
        self.settings["sciencelab_info"] = make_info(os.environ, {"gpu_monitor": self.gpu_monitor})
        # Raises TemplateError (naming file, template and field) when a template is broken.
        self.settings["sciencelab_dask"] = ClusterManager(
            parent=self,
            base_url=self.serverapp.base_url,
            kernel_specs=self.serverapp.kernel_spec_manager.get_all_specs(),
        )
        if self.gpu_monitor:
            self.settings[gpu.SAMPLER_SETTING] = gpu.make_sampler(self, self.serverapp)
        self.settings[SESSION_SETTING] = SessionRelay(os.environ)
        self.settings[SHARES_SETTING] = ShareRelay(os.environ)
        # Kernels inherit it: a notebook's Dask client links its dashboard through this server, as
        # the panel does, not at the scheduler's own address, which the browser cannot reach.
        os.environ.setdefault(DASHBOARD_LINK_ENV, make_dashboard_link(self.serverapp.base_url))

    def initialize_handlers(self):
        # The extension manager, not `jpserver_extensions`: a command-line value of that setting
        # (the spawner's, turning collaboration off) replaces the config files' list in it.
        proxy = self.serverapp.extension_manager.extensions.get("jupyter_server_proxy")
        if proxy is not None and proxy.enabled:
            manager = self.settings["sciencelab_dask"]
            install_proxy_guard(self.serverapp, lambda: manager.cluster_ids("kubernetes"))
        self.handlers.extend(make_handlers())
        self.handlers.extend(make_dask_handlers())
        self.handlers.extend(make_session_handlers())
        self.handlers.extend(make_guest_access_handlers())
        self.handlers.extend(make_share_handlers())
        if self.gpu_monitor:
            self.handlers.extend(gpu.make_handlers())

    async def _start_jupyter_server_extension(self, serverapp):
        stop_cleanly_on_sigint(serverapp)
        self._guest_access = install_guest_access(self, serverapp)
        # Now: JupyterHub sets its own hook when it initializes, which may come after ours.
        install_collaboration_page_config(serverapp.web_app.settings)
        self._room_server = start_room_server(serverapp)
        await self.settings["sciencelab_dask"].start()
        sampler = self.settings.get(gpu.SAMPLER_SETTING)
        self._activity = ActivityReporter(
            serverapp.web_app.settings,
            serverapp.kernel_manager,
            make_gpu_busy(sampler) if sampler is not None else None,
            activity_check_interval(os.environ),
        )
        self._activity.start()

    async def stop_extension(self):
        if self._guest_access is not None:
            self._guest_access.stop()
        if self._activity is not None:
            self._activity.stop()
        await self.settings["sciencelab_dask"].stop()
        if gpu.SAMPLER_SETTING in self.settings:
            await self.settings[gpu.SAMPLER_SETTING].stop()


def stop_cleanly_on_sigint(serverapp):
    """Make SIGINT stop `serverapp` as SIGTERM does: extensions (Dask clusters), kernels, then exit.

    jupyter_server takes SIGINT only when its stdin is a terminal; otherwise Python's
    KeyboardInterrupt ends the event loop without stopping extensions or kernels, and the process
    then hangs on its open clusters until it is killed, leaving their workers' scratch space behind.
    JupyterHub's local spawners stop a server with SIGINT first, and a hub run by a script, a
    service manager or a test has no terminal. A second SIGINT is ignored while the first stops.
    """
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return  # a terminal: jupyter_server (and JupyterHub's single-user app) already stop on it

    def stop(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        serverapp.stop(from_signal=True)

    signal.signal(signal.SIGINT, stop)
