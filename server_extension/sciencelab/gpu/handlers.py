"""The GPU monitor's routes: parse, call the one `GpuSampler` in `settings`, return JSON."""

import json
import struct
import time
from functools import lru_cache

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import WebSocketHandler

from ..request_json import JsonAPIHandler, JsonInputError
from .samples import GpuSettingsError, validate_settings

SAMPLER_SETTING = "sciencelab_gpu_sampler"
FINAL_TEXT_FRAME = 0x81  # RFC 6455: FIN bit and the opcode of a text message
PING_FRAME = b"\x89\x00"  # RFC 6455: a final ping frame with no payload


@lru_cache(maxsize=1)
def make_text_frame(payload: bytes) -> bytes:
    """The RFC 6455 frame a server sends for one text message: final, unmasked, uncompressed."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", FINAL_TEXT_FRAME, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", FINAL_TEXT_FRAME, 126, length)
    else:
        header = struct.pack("!BBQ", FINAL_TEXT_FRAME, 127, length)
    return header + payload


class GpuHandler(ExtensionHandlerMixin, JsonAPIHandler):
    """GET /sciencelab/api/gpu: the current sample and the history; PATCH: the sampling settings."""

    @web.authenticated
    async def get(self):
        self.finish(json.dumps(await self.settings[SAMPLER_SETTING].snapshot()))

    @web.authenticated
    def patch(self):
        sampler = self.settings[SAMPLER_SETTING]
        try:
            sampler.configure(**validate_settings(self.json_body()))
        except (GpuSettingsError, JsonInputError) as error:
            self.refuse(400, str(error))
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
        # Not WebSocketMixin.open: its ping timer per socket wakes the server twice per socket and
        # interval (ping, then pong) at moments of its own. The pings ride on the samples instead,
        # with the mixin's settings (milliseconds) and its `on_pong`, on the loop's clock.
        self._ping_period = self.ping_interval / 1e3
        self._pong_timeout = self.ping_timeout / 1e3
        self.last_ping = self.last_pong = time.monotonic()
        current = self.settings[SAMPLER_SETTING].subscribe(self.send_sample)
        if current is not None:
            self.send_sample(current)

    def send_sample(self, message: bytes):
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            self.settings[SAMPLER_SETTING].unsubscribe(self.send_sample)
            return
        frame = make_text_frame(message)
        if self._ping_period > 0:
            now = time.monotonic()
            # As WebSocketMixin.send_ping: a pong is overdue only if we pinged lately, so a machine
            # that was suspended does not count against its clients.
            if now - self.last_ping < 2 * self._ping_period and now - self.last_pong > self._pong_timeout:
                self.log.warning("GPU stream: no pong for %.0f s; closing the WebSocket.", now - self.last_pong)
                self.close()
                return
            # Every socket pings with the first sample of the same period of the clock, so the pongs
            # come back together rather than each on a wake-up of its own.
            if now // self._ping_period != self.last_ping // self._ping_period:
                frame += PING_FRAME
                self.last_ping = now
        self._write(connection.stream, memoryview(frame))

    def _write(self, stream: IOStream, frame: memoryview):
        try:
            # Sent straight to the socket when nothing else waits to be written: tornado's
            # `write_message` adds an asyncio Task, a Future and a loop callback to every write.
            # A partial send leaves the rest to the stream, so frames stay in order; TLS streams
            # always go through the stream.
            if type(stream) is IOStream and not stream.writing():
                frame = frame[stream.socket.send(frame) :]
            if frame:
                stream.write(frame)
        except BlockingIOError:
            stream.write(frame)
        except (StreamClosedError, OSError):
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
