"""The images `make images` built (images/build.py), run with podman on the host network, and their locks."""

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from images.build import MANIFEST, PODMAN_RUN_FLAGS, read_manifest, storage_options
from images.build import missing_tools as missing_build_tools

# A requirement of a lock: `name==version ; marker \` then `--hash=sha256:...` lines.
LOCKED = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)(?: ; (?P<marker>[^\\]+?))?\s*(?:\\|$)")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Locked:
    """One pinned requirement of a requirements.txt."""

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        """Whether pip installs it in `environment` (marker values; default: this interpreter's)."""
        return self.marker is None or Marker(self.marker).evaluate(environment)


def read_lock(path: Path) -> list[Locked]:
    """The pinned requirements of a lock written by `uv pip compile --generate-hashes`."""
    locked: list[Locked] = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", path.read_text()):
        match = LOCKED.match(block)
        if match:
            name = canonicalize_name(match["name"])
            locked.append(Locked(name, match["version"], match["marker"], tuple(HASH.findall(block))))
    return locked


def missing_tools() -> str | None:
    """What is missing to run the images; None when nothing is."""
    missing = missing_build_tools()
    return f"{', '.join(missing)} not installed: `make images` installs them" if missing else None


class Podman:
    """podman on the containers-storage of `make images`, with runc and cgroupfs (no systemd here)."""

    def __init__(self, storage: list[str] | None = None):
        self.command = ["podman", *(storage or storage_options()), *PODMAN_RUN_FLAGS]

    def __call__(self, *args: str, timeout: float = 300) -> str:
        """Run `podman args`; its standard output. Fails with podman's error output."""
        result = subprocess.run([*self.command, *args], capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise AssertionError(f"podman {' '.join(args)} exited with {result.returncode}:\n{result.stderr}")
        return result.stdout

    def run(self, image: str, *command: str, options: tuple[str, ...] = (), timeout: float = 300) -> str:
        """`command` in a fresh container of `image` on the host network, removed after; its output."""
        return self("run", "--rm", "--network", "host", *options, image, *command, timeout=timeout)

    def start(self, image: str, *command: str, name: str, options: tuple[str, ...] = ()) -> "Container":
        """A detached container of `image` running `command`; stop it with `Container.stop`."""
        self("rm", "--force", "--ignore", name)
        self("run", "--detach", "--name", name, "--network", "host", *options, image, *command)
        return Container(self, name)

    def inspect(self, reference: str) -> dict:
        return json.loads(self("image", "inspect", reference))[0]


@dataclass
class Container:
    podman: Podman
    name: str

    def logs(self) -> str:
        result = subprocess.run([*self.podman.command, "logs", self.name], capture_output=True, text=True)
        return result.stdout + result.stderr

    def running(self) -> bool:
        return self.podman("inspect", "--format", "{{.State.Running}}", self.name).strip() == "true"

    def stop(self):
        """Stop it (tini forwards SIGTERM to the process), then remove it."""
        self.podman("rm", "--force", "--time", "10", self.name)


def wait_for(probe, container: Container, what: str, timeout: float = 120):
    """Call `probe()` until it returns true; fails with the container's log if it stops or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except OSError:  # requests' ConnectionError, refused connections
            pass
        if not container.running():
            raise AssertionError(f"{container.name} exited before {what}:\n{container.logs()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(f"no {what} in {timeout}s:\n{container.logs()[-4000:]}")


class PrivateContainerd:
    """A containerd of its own under `state_dir` (its socket, content and snapshots there; no CRI
    plugin), as the cluster's kubelet uses, for `ctr` to import archives into. Stop it with `stop`."""

    # Where containerd's runc shim and ctr's fifos go whatever the config says; removed after a
    # run unless it was there before (a host's own containerd).
    HOST_RUN_DIR = Path("/run/containerd")

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.socket = state_dir / "containerd.sock"
        self.process: subprocess.Popen | None = None
        self.host_run_dir_existed = self.HOST_RUN_DIR.exists()

    def start(self) -> "PrivateContainerd":
        config = self.state_dir / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.state_dir / "root"}"\n'
            f'state = "{self.state_dir / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
        )
        with open(self.state_dir / "containerd.log", "wb") as log:
            self.process = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while subprocess.run(self.ctr_command("version"), capture_output=True).returncode:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start:\n{(self.state_dir / 'containerd.log').read_text()}")
            time.sleep(0.2)
        return self

    def ctr_command(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args]

    def ctr(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(self.ctr_command(*args), capture_output=True, text=True, timeout=timeout)
        if result.returncode:
            raise AssertionError(f"ctr {' '.join(args)} exited with {result.returncode}:\n{result.stderr}")
        return result.stdout

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.host_run_dir_existed:
            shutil.rmtree(self.HOST_RUN_DIR, ignore_errors=True)


def built_images() -> dict[str, dict]:
    """The manifest entries of the images `make images` built last."""
    return read_manifest(MANIFEST)["images"]
