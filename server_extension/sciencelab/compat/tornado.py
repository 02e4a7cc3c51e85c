"""tornado: routes that take precedence over those every other server extension registered, and
one WebSocket frame written to many sockets.

`Application.add_handlers` appends a host rule before the application's own wildcard rule, so the
extension that registers first wins a path; there is no public way to register before another.
The proxy guard must answer jupyter-server-proxy's `/proxy/...` paths, which that extension (loaded
before ours: extensions load in alphabetical order) registers too.

`WebSocketHandler.write_message` frames its message again for every socket (a copy of the whole
message) and wraps each write in a coroutine run as a Task of its own: with the GPU stream's 100
sockets at 1 Hz that was most of the stream's CPU. `write_shared_frame` writes one frame, built once
per message, to each socket's stream; there is no public way to send prepared frames.
"""

import asyncio
import struct
from asyncio import Future

from tornado.iostream import StreamClosedError
from tornado.web import Application
from tornado.websocket import WebSocketClosedError, WebSocketHandler

PRIVATE_NAMES = (
    "tornado.web:Application().default_router.rules",
    "tornado.websocket:WebSocketHandler().ws_connection",
    "tornado.websocket:WebSocketProtocol13().stream",
    "tornado.websocket:WebSocketProtocol13()._compressor",
)
# RFC 6455 section 5.2: FIN and the text opcode.
FINAL_TEXT_FRAME = 0x81


def make_text_frame(payload: bytes) -> bytes:
    """`payload` (UTF-8 text) as one final, unmasked, uncompressed WebSocket frame (RFC 6455 5.2)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", FINAL_TEXT_FRAME, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", FINAL_TEXT_FRAME, 126, length)
    else:
        header = struct.pack("!BBQ", FINAL_TEXT_FRAME, 127, length)
    return header + payload


def write_shared_frame(handler: WebSocketHandler, message: bytes, frame: bytes) -> Future:
    """Send `message`, already framed as `frame` (`make_text_frame`), to `handler`'s client; the
    returned future resolves once the socket took it. A connection that compresses gets
    `write_message` instead. Raises `WebSocketClosedError` when the connection is closed."""
    connection = handler.ws_connection
    # ref: https://github.com/tornadoweb/tornado/blob/v6.5.0/tornado/websocket.py#L1111 (write_message
    # frames per socket in _write_frame and writes the frame to the protocol's `stream`)
    if connection is None or connection.is_closing():
        raise WebSocketClosedError()
    if connection._compressor is not None:
        return handler.write_message(message)
    try:
        return connection.stream.write(frame)
    except StreamClosedError:
        raise WebSocketClosedError() from None


def add_handlers_first(web_app: Application, handlers: list):
    """Route `handlers` before every rule registered so far, other extensions' included."""
    web_app.add_handlers(".*$", handlers)
    # ref: https://github.com/tornadoweb/tornado/blob/v6.5.0/tornado/web.py#L2196 (`add_handlers`
    # inserts the new host rule just before the last one, the application's wildcard rule)
    rules = web_app.default_router.rules
    rules.insert(0, rules.pop(-2))


def canary():
    """Fails, naming the symbol, when the installed tornado routes or frames otherwise."""
    _canary_routes()
    asyncio.run(_canary_shared_frame())


def _canary_routes():
    """Fails when the installed tornado no longer routes to the rule `add_handlers_first` put first."""
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
    from tornado.web import RequestHandler

    class First(RequestHandler):
        pass

    class Second(RequestHandler):
        pass

    application = Application()
    application.add_handlers(".*$", [("/path", Second)])
    add_handlers_first(application, [("/path", First)])
    request = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/path", "HTTP/1.1"), headers=HTTPHeaders({"Host": "localhost"})
    )
    delegate = application.find_handler(request)
    assert delegate.handler_class is First, (
        "tornado.web.Application().default_router.rules: a rule moved first no longer takes precedence"
    )


async def _canary_shared_frame():
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port
    from tornado.websocket import websocket_connect

    message = ("é" * 40_000).encode()  # a 64-bit length
    sent = asyncio.get_running_loop().create_future()

    class Stream(WebSocketHandler):
        def open(self):
            for payload in (b"{}", b"x" * 300, message):
                write_shared_frame(self, payload, make_text_frame(payload))
            sent.set_result(True)

    sock, port = bind_unused_port()
    server = HTTPServer(Application([("/", Stream)]))
    server.add_sockets([sock])
    try:
        client = await websocket_connect(f"ws://127.0.0.1:{port}/")
        received = [await client.read_message() for _ in range(3)]
        client.close()
    finally:
        server.stop()
    assert received == ["{}", "x" * 300, message.decode()], (
        "tornado.websocket.WebSocketProtocol13().stream: a frame written to the stream no longer reaches "
        "the client as one text message"
    )
