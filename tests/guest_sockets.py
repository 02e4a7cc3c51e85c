"""A guest of a shared server, as JupyterLab would be: HTTP requests and WebSockets (kernel channels,
events, a collaborative document room) opened with the guest's token, and the times at which the
server cut them off."""

import json
import threading
import time
import uuid
from collections.abc import Callable

import requests
import websocket

from .demo_hub import DemoHub

OPEN_TIMEOUT = 60  # seconds to open a socket on a busy machine
POLL_INTERVAL = 0.05


class WatchedSocket:
    """A WebSocket read in a thread of its own until the server closes it; `closed_at`
    (time.monotonic), `close_code` and `close_reason` then say when and how."""

    def __init__(self, url: str, token: str, name: str):
        self.name = name
        self.connection = websocket.create_connection(
            url, header=[f"Authorization: token {token}"], timeout=OPEN_TIMEOUT
        )
        self.connection.settimeout(None)
        self.closed_at: float | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.messages: list[str] = []  # the text messages it received
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                frame = self.connection.recv_data_frame(control_frame=True)
            except Exception:  # the connection dropped without a close frame
                break
            opcode, frame = frame
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self.messages.append(frame.data.decode(errors="replace"))
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = frame.data or b""
                self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                self.close_reason = data[2:].decode(errors="replace")
                break
        self.closed_at = time.monotonic()

    def wait_closed(self, timeout: float) -> bool:
        self._reader.join(timeout)
        return self.closed_at is not None

    def close(self):
        try:
            self.connection.close()
        except Exception:
            pass


def server_url(hub: DemoHub, owner: str, server: str) -> str:
    return f"{hub.url}/user/{owner}/{server}/" if server else f"{hub.url}/user/{owner}/"


def open_guest_sockets(hub: DemoHub, guest: str, owner: str, server: str, document: bool) -> list[WatchedSocket]:
    """`guest`'s sockets on `owner`'s `server`: a kernel's channels, the event stream and, with
    `document`, the room of a notebook the guest opened collaboratively."""
    base = server_url(hub, owner, server)
    token = hub.token(guest)
    headers = {"Authorization": f"token {token}"}
    ws_base = "ws" + base.removeprefix("http")
    kernel = requests.post(f"{base}api/kernels", json={"name": "python3"}, headers=headers, timeout=60)
    kernel.raise_for_status()
    sockets = [
        WatchedSocket(f"{ws_base}api/kernels/{kernel.json()['id']}/channels", token, "kernel"),
        WatchedSocket(f"{ws_base}api/events/subscribe", token, "events"),
    ]
    if document:
        path = f"shared-{guest}-{uuid.uuid4().hex[:8]}.ipynb"
        created = requests.put(f"{base}api/contents/{path}", json={"type": "notebook"}, headers=headers, timeout=60)
        created.raise_for_status()
        session = requests.put(
            f"{base}api/collaboration/session/{path}",
            json={"format": "json", "type": "notebook"},
            headers=headers,
            timeout=60,
        )
        session.raise_for_status()
        room = session.json()
        sockets.append(
            WatchedSocket(
                f"{ws_base}api/collaboration/room/json:notebook:{room['fileId']}?sessionId={room['sessionId']}",
                token,
                "document room",
            )
        )
    return sockets


def contents_status(hub: DemoHub, token: str, owner: str, server: str) -> int:
    """The status of a GET of the server's file list with `token`."""
    return requests.get(
        f"{server_url(hub, owner, server)}api/contents",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        allow_redirects=False,
    ).status_code


def seconds_until(condition: Callable[[], bool], started: float, timeout: float) -> float | None:
    """Seconds from `started` (time.monotonic) until `condition()` held, polling; None if it
    did not within `timeout` of `started`."""
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(POLL_INTERVAL)
    return None


def close_summary(socket: WatchedSocket) -> str:
    reason = socket.close_reason
    try:
        reason = json.loads(reason).get("errorReason", reason)
    except (ValueError, AttributeError):
        pass
    return f"{socket.close_code} {reason!r}"
