"""Kernels of a running Jupyter server, spoken to as JupyterLab does: started through the REST API,
run over the kernel's `channels` WebSocket."""

import contextlib
import json
import time
import uuid
from collections.abc import Iterator

import requests
import websocket

KERNEL_TIMEOUT = 120  # seconds for a kernel to answer one cell


@contextlib.contextmanager
def running_kernel(kernels_url: str, token: str, name: str) -> Iterator["ServerKernel"]:
    """A kernel of kernelspec `name` started by POST to a server's `kernels_url`
    (`http://host:port/<base_url>api/kernels`) with `token`; shut down afterwards."""
    headers = {"Authorization": f"token {token}"}
    response = requests.post(kernels_url, json={"name": name}, headers=headers, timeout=60)
    response.raise_for_status()
    kernel_id = response.json()["id"]
    try:
        channels = websocket.create_connection(
            f"ws{kernels_url.removeprefix('http')}/{kernel_id}/channels",
            header=[f"Authorization: token {token}"],
            timeout=KERNEL_TIMEOUT,
        )
        try:
            yield ServerKernel(channels)
        finally:
            channels.close()
    finally:
        requests.delete(f"{kernels_url}/{kernel_id}", headers=headers, timeout=60)


class ServerKernel:
    """A kernel of a single-user server, spoken to over its `channels` WebSocket (Jupyter's JSON
    message protocol), as JupyterLab does."""

    def __init__(self, channels: websocket.WebSocket):
        self.channels = channels
        self.session = uuid.uuid4().hex

    def run(self, code: str, timeout: float = KERNEL_TIMEOUT) -> str:
        """Execute `code`; return its stdout, or fail with the kernel's traceback."""
        msg_id = uuid.uuid4().hex
        self.channels.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": self.session,
                        "username": "tests",
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "buffers": [],
                    "channel": "shell",
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        output, status, idle = [], None, False
        deadline = time.monotonic() + timeout
        while status is None or not idle:
            if time.monotonic() > deadline:
                raise AssertionError(f"the kernel did not finish in {timeout}s; output so far: {''.join(output)}")
            message = json.loads(self.channels.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                output.append(content["text"])
            elif kind == "error":
                output.append("\n".join(content["traceback"]))
            elif kind == "execute_reply":
                status = content["status"]
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        assert status == "ok", "".join(output)
        return "".join(output)
