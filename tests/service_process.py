"""Service processes started by test fixtures and benchmarks: waiting for them to answer, and
checking their logs for tracebacks."""

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

TRACEBACK = "Traceback (most recent call last)"


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


CHAINED = ("The above exception was the direct cause", "During handling of the above exception")


class TracebackWatch:
    """Fails, quoting them, when the log of `name` at `log_path` gained tracebacks since the last check.

    A refusal logs one line and a failure a message, never a traceback: a traceback in a service's
    log is a bug, even when every answer looked right.
    """

    def __init__(self, log_path: Path, name: str):
        self.log_path = log_path
        self.name = name
        self._checked = 0  # bytes of the log already read

    def check(self):
        log = self.log_path.read_bytes()
        new, self._checked = log[self._checked :], len(log)
        lines = new.decode(errors="replace").splitlines()
        # A traceback attached to an INFO record is a dependency's information, not an error:
        # distributed logs a closed connection during a cluster's normal shutdown that way
        # ("distributed.batched - INFO - Batched Comm Closed", exc_info=True).
        # A chained exception's traceback ("The above exception was ...") belongs to the first.
        starts = [
            index
            for index, line in enumerate(lines)
            if TRACEBACK in line
            and not (index and " - INFO - " in lines[index - 1])
            and not (index > 1 and lines[index - 2].startswith(CHAINED))
        ]
        if starts:
            quoted = "\n---\n".join("\n".join(lines[max(0, i - 2) : i + 20]) for i in starts[:3])
            raise AssertionError(f"{self.name} logged {len(starts)} traceback(s), see {self.log_path}:\n{quoted}")
