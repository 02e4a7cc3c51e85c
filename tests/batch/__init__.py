"""Real batch systems for tests: a personal HTCondor pool and a single-node SLURM cluster on 127.0.0.1.

`install-htcondor.sh` and `install-slurm.sh` install them (the Makefile's `.stamps/htcondor` and
`.stamps/slurm`); `htcondor.HTCondorPool` and `slurm.SlurmCluster` start, query and stop them; the
`htcondor_pool` and `slurm_cluster` fixtures in tests/conftest.py wrap those for pytest.
"""

import os
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


class BatchSystemMissing(RuntimeError):
    """The batch system is not installed here; the message names the command that installs it."""


def start_or_skip(start):
    """`start()`; if the batch system is not installed, skip, or fail under CI (CI must run every tier)."""
    try:
        return start()
    except BatchSystemMissing as missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {missing}", pytrace=False)
        pytest.skip(str(missing))


def cache_dir() -> Path:
    """Where slow installs are cached, outside the repository (the Makefile uses the same rule)."""
    return Path(os.environ.get("SCIENCELAB_CACHE_DIR") or Path.home() / ".cache" / "sciencelab")


def wait_until(condition, timeout: float, what: str, interval: float = 0.2, describe=lambda: ""):
    """Poll `condition()` until it returns something true; RuntimeError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen in {timeout:.0f}s\n{describe()}")
        time.sleep(interval)


def mount_namespace(pid: int) -> str | None:
    """The mount namespace of process `pid` ('mnt:[4026...]'), None once it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def wait_for_unshared_namespace(process: subprocess.Popen, check_alive) -> str:
    """The mount namespace `process` (started through `unshare --mount`) moved into, once it has.

    `check_alive()` raises with the process's logs if it died on the way.
    """
    own = mount_namespace(os.getpid())

    def unshared():
        check_alive()
        namespace = mount_namespace(process.pid)
        return namespace if namespace != own else None

    return wait_until(unshared, 10, "unshare of a mount namespace")


def processes_in_namespace(namespace: str) -> list[int]:
    """Every process whose mount namespace is `namespace`."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and mount_namespace(int(entry.name)) == namespace]


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file, or a note that it does not exist."""
    if not path.exists():
        return f"({path} does not exist)"
    return f"--- {path} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """`command` with its output captured as text; RuntimeError with its output if it fails."""
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120, **kwargs)
    except subprocess.CalledProcessError as error:
        output = f"{error.stdout}{error.stderr}"
        raise RuntimeError(f"{' '.join(command)} exited with {error.returncode}:\n{output}") from None
