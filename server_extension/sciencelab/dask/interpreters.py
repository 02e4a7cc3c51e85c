"""The Python interpreters of kernels, as `local` workers run them.

Where a kernel's interpreter is and which software it runs is decided when the server starts, from
the file system only (a `PATH` look-up, a `pyvenv.cfg`): nothing is imported or run while the form
is served. Whether an interpreter can run a Dask worker is checked when a cluster is created, with
one short subprocess that reads its installed `distributed` version without importing it.
"""

import asyncio
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .templates import Environment, Interpreter, kernel_interpreter

# Run by the interpreter being checked: its Python version and installed `distributed`, as JSON.
# Reading the package metadata takes a tenth of a second; importing distributed takes seconds.
PROBE = """\
import importlib.metadata, json, platform
try:
    distributed = importlib.metadata.version("distributed")
except importlib.metadata.PackageNotFoundError:
    distributed = None
print(json.dumps({"python": platform.python_version(), "distributed": distributed}))
"""


def locate_interpreter(command: str) -> Interpreter | None:
    """Where `command` (a path, or a name looked up on `PATH` as the kernel's launch does) is, and the
    environment it runs: the virtual environment whose `pyvenv.cfg` lies next to it or one level up
    (as Python itself finds it: the executable is a symlink out of the venv), else the prefix of the
    resolved executable. None when there is no such executable."""
    found = shutil.which(command)
    if found is None:
        return None
    path = os.path.abspath(found)
    directory = os.path.dirname(path)
    for candidate in (directory, os.path.dirname(directory)):
        if os.path.isfile(os.path.join(candidate, "pyvenv.cfg")):
            return Interpreter(path=path, environment=os.path.realpath(candidate))
    return Interpreter(path=path, environment=os.path.dirname(os.path.dirname(os.path.realpath(path))))


def locate_kernel_interpreters(kernel_specs: Mapping, server_python: str) -> dict[str, Interpreter]:
    """Every kernel's interpreter command (`kernel_interpreter`) -> where it is; commands not found are left out."""
    commands = {kernel_interpreter(kernel.get("spec", {}), server_python) for kernel in kernel_specs.values()}
    located = {command: locate_interpreter(command) for command in commands if command is not None}
    return {command: interpreter for command, interpreter in located.items() if interpreter is not None}


@dataclass(frozen=True)
class ProbeResult:
    """What an interpreter said about itself: its `distributed` version (None: not installed), or why
    it could not answer (`failure`; `timed_out` when it may answer on a less busy machine)."""

    python: str | None = None
    distributed: str | None = None
    failure: str | None = None
    timed_out: bool = False


async def probe_interpreter(path: str, timeout: float) -> ProbeResult:
    """Run `PROBE` in the interpreter at `path`; a failure to start, a crash or a timeout is reported, not raised."""
    try:
        process = await asyncio.create_subprocess_exec(
            path,
            "-c",
            PROBE,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as error:
        return ProbeResult(failure=f"cannot be run ({error.strerror or error})")
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        return ProbeResult(failure=f"did not answer within {timeout:g} s", timed_out=True)
    try:  # the last line: a sitecustomize may print before it
        answer = json.loads(stdout.splitlines()[-1])
        return ProbeResult(python=answer["python"], distributed=answer["distributed"])
    except (ValueError, KeyError, TypeError, IndexError):
        last_line = (stderr.decode(errors="replace").strip().splitlines() or [f"exit status {process.returncode}"])[-1]
        return ProbeResult(failure=f"failed to report its packages: {last_line}")


def worker_interpreter_problem(
    environment: Environment, probe: ProbeResult, server_distributed: str, alternatives: Sequence[str]
) -> str | None:
    """Why `environment`'s interpreter cannot run workers of this server's scheduler, for people; None if it can.

    Workers must run the scheduler's `distributed` release: their messages and task states are
    those of one version.
    """
    if probe.failure is None and probe.distributed == server_distributed:
        return None
    where = f"environment {environment.name!r}: {environment.value}"
    others = [name for name in alternatives if name != environment.name]
    choose = f"choose another environment ({', '.join(others)})" if others else "ask your admin"
    if probe.failure is not None:
        return f"{where} {probe.failure}; {choose}"
    found = f"has distributed {probe.distributed}" if probe.distributed else "does not have distributed"
    return (
        f"{where} {found}; the server has {server_distributed}; install distributed=={server_distributed} "
        f"there or {choose}"
    )
