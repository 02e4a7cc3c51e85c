"""jupyter-collaboration's server half (jupyter_server_ydoc): its document WebSocket server, started
with the server rather than at the first room.

`YDocExtension.stop_extension` stops that server unconditionally, and pycrdt-websocket raises
"WebsocketServer not running" for one that never started: every collaborative server whose user
opened no document logged a traceback when it stopped. Starting it with the server (an idle task
group) makes the stop clean. Upstream: jupyterlab/jupyter-collaboration#161 (shutdown) and its open
fix #546.
"""

import asyncio

from jupyter_server.serverapp import ServerApp

PRIVATE_NAMES = (
    "jupyter_server_ydoc.app:YDocExtension().ywebsocket_server",
    "jupyter_server_ydoc.websocketserver:JupyterWebsocketServer.start",
    "jupyter_server_ydoc.websocketserver:JupyterWebsocketServer.started",
)
EXTENSION_NAME = "jupyter_server_ydoc"


def start_room_server(serverapp: ServerApp) -> asyncio.Task | None:
    """Start the document WebSocket server of `serverapp`'s jupyter-collaboration, if it runs one;
    the task runs until the extension stops it. Keep a reference to it."""
    # ref: https://github.com/jupyterlab/jupyter-collaboration/blob/v5.0.4/projects/jupyter-server-ydoc/jupyter_server_ydoc/app.py#L321
    # (stop_extension -> clean() -> stop(), which raises when start() never ran)
    extension = next(iter(serverapp.extension_manager.extension_apps.get(EXTENSION_NAME, ())), None)
    if extension is None:
        return None
    room_server = extension.ywebsocket_server
    if room_server.started.is_set():
        return None
    return asyncio.create_task(room_server.start())


def canary():
    """Fails, naming the symbol, when the installed jupyter_server_ydoc keeps its server elsewhere."""
    from jupyter_server_ydoc.app import YDocExtension
    from jupyter_server_ydoc.websocketserver import JupyterWebsocketServer

    assert "ywebsocket_server" in YDocExtension.initialize_handlers.__code__.co_names, (
        "jupyter_server_ydoc.app.YDocExtension().ywebsocket_server is no longer set in initialize_handlers"
    )
    assert asyncio.iscoroutinefunction(JupyterWebsocketServer.start), (
        "jupyter_server_ydoc.websocketserver.JupyterWebsocketServer.start is no longer a coroutine"
    )
