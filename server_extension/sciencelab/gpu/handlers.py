"""The GPU monitor's routes: parse, call the one `GpuSampler` in `settings`, return JSON."""

import json
from asyncio import Future

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..compat.tornado import make_text_frame, write_shared_frame
from ..request_json import JsonAPIHandler, JsonInputError
from .samples import GpuSettingsError, validate_settings

SAMPLER_SETTING = "sciencelab_gpu_sampler"


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


class SharedFrame:
    """The WebSocket frame of the latest sample, built once for every socket that sends it."""

    message: bytes | None = None
    frame: bytes = b""

    @classmethod
    def of(cls, message: bytes) -> bytes:
        if message is not cls.message:
            cls.message, cls.frame = message, make_text_frame(message)
        return cls.frame


class GpuStreamHandler(ExtensionHandlerMixin, WebSocketMixin, WebSocketHandler, JupyterHandler):
    """WebSocket /sciencelab/api/gpu/stream: the current sample on connect, then every new one.

    Authenticated as jupyter_server's own kernel WebSocket is: the user must be logged in before the
    upgrade, and the origin is checked by `WebSocketMixin`. Kept alive by the server's pings, with
    its settings (`ws_ping_interval`, `ws_ping_timeout`): a client that stops answering is closed.
    """

    # The write of the last sample while the client has not taken it yet.
    _sending: Future | None = None

    def set_default_headers(self):
        """No JupyterHandler headers (CSP and friends) on an upgrade response."""

    @ws_authenticated
    async def get(self, *args, **kwargs):
        await super().get(*args, **kwargs)

    def open(self, *args, **kwargs):
        # Not WebSocketMixin.open: its timer per socket wakes the server twice per socket and
        # interval (ping, then pong), at moments of its own. The same pings (tornado's `ping`, the
        # mixin's settings, in milliseconds, and its `on_pong`) go out with a sample instead.
        self._ping_period = self.ping_interval / 1e3
        self._pong_timeout = self.ping_timeout / 1e3
        # The clock of `on_pong`, looked up once: `IOLoop.current()` per socket and sample was a tenth
        # of the stream's CPU with 100 sockets (py-spy).
        self._loop = IOLoop.current()
        self.last_ping = self.last_pong = self._loop.time()
        current = self.settings[SAMPLER_SETTING].subscribe(self.send_sample)
        if current is not None:
            self.send_sample(current)

    def send_sample(self, message: bytes):
        """Send one sample, the UTF-8 JSON every socket shares, framed once for all of them
        (`write_shared_frame`), and a ping when one is due."""
        try:
            if self._ping_period > 0:
                now = self._loop.time()
                # As WebSocketMixin.send_ping: a pong is overdue only if we pinged lately, so a
                # machine that was suspended does not count against its clients.
                if now - self.last_ping < 2 * self._ping_period and now - self.last_pong > self._pong_timeout:
                    self.log.warning("GPU stream: no pong for %.0f s; closing the WebSocket.", now - self.last_pong)
                    self.close()
                    return
            # A client that does not read gets the next sample instead of a queue of old ones.
            if self._sending is None or self._sending.done():
                self._sending = write_shared_frame(self, message, SharedFrame.of(message))
            # Every socket pings with the first sample of the same period of the clock, so the
            # pongs come back together rather than each on a wake-up of its own.
            if self._ping_period > 0 and now // self._ping_period != self.last_ping // self._ping_period:
                self.ping()
                self.last_ping = now
        except WebSocketClosedError:
            self.settings[SAMPLER_SETTING].unsubscribe(self.send_sample)

    def on_message(self, message):
        """Clients only listen; settings go through PATCH, where they are validated and answered."""

    def on_close(self):
        self.settings[SAMPLER_SETTING].unsubscribe(self.send_sample)
        if self._sending is not None:
            # A write the close cut short fails (StreamClosedError); expected, so not logged by
            # asyncio as an exception nobody retrieved.
            self._sending.add_done_callback(lambda sent: sent.cancelled() or sent.exception())


def make_handlers() -> list[tuple[str, type]]:
    """The GPU monitor's routes, relative to the server's base URL."""
    return [
        (r"/sciencelab/api/gpu", GpuHandler),
        (r"/sciencelab/api/gpu/stream", GpuStreamHandler),
    ]
