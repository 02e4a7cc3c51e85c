"""The GPU monitor's routes: parse, call the one `GpuSampler` in `settings`, return JSON."""

import json

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketHandler

from .samples import GpuSettingsError, validate_settings

SAMPLER_SETTING = "sciencelab_gpu_sampler"
TEXT_FRAME = 0x1  # RFC 6455 opcode of a text message


class GpuHandler(ExtensionHandlerMixin, APIHandler):
    """GET /sciencelab/api/gpu: the current sample and the history; PATCH: the sampling settings."""

    @web.authenticated
    async def get(self):
        self.finish(json.dumps(await self.settings[SAMPLER_SETTING].snapshot()))

    @web.authenticated
    def patch(self):
        sampler = self.settings[SAMPLER_SETTING]
        try:
            sampler.configure(**validate_settings(self.get_json_body()))
        except GpuSettingsError as error:
            # Answered here, not through HTTPError: its message is a %-format, and values may hold '%'.
            self.set_status(400)
            self.finish(json.dumps({"message": str(error)}))
            return
        self.finish(json.dumps(sampler.settings()))


class GpuStreamHandler(ExtensionHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """WebSocket /sciencelab/api/gpu/stream: the current sample on connect, then every new one.

    Authenticated as jupyter_server's own kernel WebSocket is: the user must be logged in before the
    upgrade, and the origin is checked by `WebSocketMixin`.
    """

    def set_default_headers(self):
        """No JupyterHandler headers (CSP and friends) on an upgrade response."""

    @ws_authenticated
    async def get(self, *args, **kwargs):
        await super().get(*args, **kwargs)

    def open(self, *args, **kwargs):
        super().open(*args, **kwargs)  # WebSocketMixin's ping loop
        current = self.settings[SAMPLER_SETTING].subscribe(self.send_sample)
        if current is not None:
            self.send_sample(current)

    def send_sample(self, message: bytes):
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            self.settings[SAMPLER_SETTING].unsubscribe(self.send_sample)
            return
        try:
            # The frame `write_message` would send, without the asyncio Task it wraps around every
            # write: that Task is a third of the server's CPU when 100 sockets listen (see
            # bench/gpu_stream.py). The message is UTF-8 JSON already, encoded once for all sockets.
            connection._write_frame(True, TEXT_FRAME, message)
        except StreamClosedError:
            self.settings[SAMPLER_SETTING].unsubscribe(self.send_sample)

    def on_message(self, message):
        """Clients only listen; settings go through PATCH, where they are validated and answered."""

    def on_close(self):
        self.settings[SAMPLER_SETTING].unsubscribe(self.send_sample)


def make_handlers() -> list[tuple[str, type]]:
    """The GPU monitor's routes, relative to the server's base URL."""
    return [
        (r"/sciencelab/api/gpu", GpuHandler),
        (r"/sciencelab/api/gpu/stream", GpuStreamHandler),
    ]
