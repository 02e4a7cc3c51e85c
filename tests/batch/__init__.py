"""Real batch systems for tests: a personal HTCondor pool and a single-node SLURM cluster on 127.0.0.1.

`install-htcondor.sh` and `install-slurm.sh` install them (the Makefile's `.stamps/htcondor` and
`.stamps/slurm`); `htcondor.HTCondorPool` and `slurm.SlurmCluster` start, query and stop them; the
`htcondor_pool` and `slurm_cluster` fixtures in tests/conftest.py wrap those for pytest.

Every pool runs in a private mount namespace and keeps its state in a fresh /tmp directory that
records its owner and namespace: stopping it kills whatever is left in the namespace, and the next
start reaps pools whose test run died without stopping them.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ..prerequisites import require

HERE = Path(__file__).resolve().parent


class BatchSystemMissing(RuntimeError):
    """The batch system is not installed here; the message names the command that installs it."""


def start_or_skip(start):
    """`start()`; if the batch system is not installed, skip, or fail under CI (CI must run every tier)."""
    try:
        return start()
    except BatchSystemMissing as missing:
        require(str(missing))


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


def wait_for_unshared_namespace(process: subprocess.Popen, state: Path, check_alive) -> str:
    """The mount namespace `process` (started through `unshare --mount`) moved into, once it has.

    Recorded in `state`/namespace for `claim_state_directory`'s reaping. `check_alive()` raises
    with the process's logs if it died on the way.
    """
    own = mount_namespace(os.getpid())

    def unshared():
        check_alive()
        namespace = mount_namespace(process.pid)
        return namespace if namespace != own else None

    namespace = wait_until(unshared, 10, "unshare of a mount namespace")
    (state / "namespace").write_text(namespace)
    return namespace


def processes_in_namespace(namespace: str) -> list[int]:
    """Every process whose mount namespace is `namespace`."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and mount_namespace(int(entry.name)) == namespace
    ]


def kill_namespace(namespace: str, sig: int = signal.SIGKILL):
    """Send `sig` to every process in mount namespace `namespace`."""
    for pid in processes_in_namespace(namespace):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _process_identity(pid: int) -> str | None:
    """'<pid> <start time>': unlike the pid alone, never the same for a later process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid} {stat.rsplit(')', 1)[1].split()[19]}"


def claim_state_directory(prefix: str) -> Path:
    """A fresh state directory /tmp/<prefix>XXXX owned by this process.

    First reaps the pools of earlier owners that died without stopping them (a test run killed
    with SIGKILL): their processes are killed through the mount namespace each recorded, and their
    directories deleted. Pools of live owners (another test run beside this one) are left alone.
    """
    for state in Path(tempfile.gettempdir()).glob(f"{prefix}*"):
        try:
            owner = (state / "owner").read_text()
        except OSError:
            continue
        if _process_identity(int(owner.split()[0])) == owner:
            continue
        namespace_file = state / "namespace"
        if namespace_file.exists():
            namespace = namespace_file.read_text()
            kill_namespace(namespace)
            wait_until(lambda: not processes_in_namespace(namespace), 10, f"the end of the orphaned pool in {state}")
        shutil.rmtree(state, ignore_errors=True)
    state = Path(tempfile.mkdtemp(prefix=prefix))
    (state / "owner").write_text(_process_identity(os.getpid()))
    return state


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
