"""Waiting for a service process started by a test fixture or benchmark to answer."""

import subprocess
import time
from collections.abc import Callable

import requests


def wait_until_answering(
    process: subprocess.Popen,
    probe: Callable[[], bool],
    timeout: float,
    name: str,
    log_tail: Callable[[], str],
    interval: float = 0.2,
):
    """Call `probe()` every `interval` seconds until it is true.

    Fails with the service's log when `process` exits first or `timeout` seconds pass; a refused
    connection counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_tail()}")
        try:
            if probe():
                return
        except requests.ConnectionError:
            pass
        time.sleep(interval)
    raise RuntimeError(f"{name} did not answer in {timeout}s:\n{log_tail()}")
