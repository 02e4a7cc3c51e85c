"""The `sciencelab` Jupyter server extension application."""

import os

from jupyter_server.extension.application import ExtensionApp

from .handlers import make_handlers
from .info import make_info


class SciencelabApp(ExtensionApp):
    """Registers ScienceLab's REST API under `<base_url>/sciencelab/api/`."""

    name = "sciencelab"

    def initialize_settings(self):
        # The info document cannot change while the server runs: compute it once.
        self.settings["sciencelab_info"] = make_info(os.environ)

    def initialize_handlers(self):
        self.handlers.extend(make_handlers())
