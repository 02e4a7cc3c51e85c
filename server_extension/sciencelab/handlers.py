"""REST handlers of the ScienceLab server extension: parse, call the core, return JSON."""

import json

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web


class InfoHandler(ExtensionHandlerMixin, APIHandler):
    """GET /sciencelab/api/info: version, spawn profile and enabled features."""

    @web.authenticated
    def get(self):
        self.finish(json.dumps(self.settings["sciencelab_info"]))


def make_handlers() -> list[tuple[str, type]]:
    """The extension's routes, relative to the server's base URL."""
    return [(r"/sciencelab/api/info", InfoHandler)]
