"""Container images for the test cluster, built without a daemon or a registry.

Images are written as docker-archive tars (`manifest.json` with `RepoTags`, the config, one tar per
layer): the format `docker save`, `podman save` and buildah's `docker-archive:` write and
`ctr -n k8s.io images import` reads, so the cluster takes these and the images `make images`
builds alike (`KubeCluster.import_image`). Each is cached in `IMAGE_CACHE` under a key of its
inputs (paths, sizes, modification times), so an unchanged image is written once.

- `pause_image()`: the pod sandbox, the `pause` binary `install-kubernetes.sh` builds from the
  kubernetes source (what registry.k8s.io/pause holds).
- `probe_image()`: Debian's static busybox (a shell, `id`, `stat`, `httpd`...) for tests of what
  the kubelet does with a pod.
- `lab_test_image()`: JupyterLab and ScienceLab as this checkout runs them: this virtual
  environment's interpreter with its standard library, the distributions `sciencelab` depends on
  (pip's dependency closure, without the test extra), this checkout's packages at their paths (the
  editable install points there), the shared libraries all of them load, user jovyan (1000:100).
  The stand-in for the `lab` image of images/ where `make images` has not built it
  (`lab_image_archive` chooses).
"""

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from images.build import read_manifest

from .apiserver import CACHE_DIR, KUBERNETES_DIR

IMAGE_CACHE = CACHE_DIR / "kube-images"
# A docker-archive of the `lab` image (`make images`) to run the tests' user pods on instead.
LAB_IMAGE_ARCHIVE_ENV = "SCIENCELAB_LAB_IMAGE_ARCHIVE"
REPO = Path(__file__).resolve().parents[2]
PAUSE_IMAGE = "sciencelab.test/pause:1.20.2"
PROBE_IMAGE = "sciencelab.test/probe:1"
LAB_TEST_IMAGE = "sciencelab.test/lab:dev"
BUSYBOX = Path("/bin/busybox")
PASSWD = "root:x:0:0:root:/root:/bin/sh\njovyan:x:1000:100:jovyan:/home/jovyan:/bin/sh\n"
GROUP = "root:x:0:\nusers:x:100:jovyan\n"
# Parts of the standard library a server never imports: the test suite alone is half of it.
STDLIB_EXCLUDED = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}
_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


@dataclass
class Layer:
    """What one layer holds, by path in the image: host files (copied with their mode), symlinks,
    directories (mode, uid, gid) and files with given contents."""

    files: dict[str, Path] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    directories: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)

    def add_host_path(self, path: str | Path):
        """`path` at the same place in the image, with every symlink on the way (on a merged-/usr
        host, /lib/x86_64-linux-gnu/libc.so.6 is /usr/lib/... behind the /lib link)."""
        path = os.path.abspath(path)
        parts = Path(path).parts
        current = "/"
        for index, part in enumerate(parts[1:], start=1):
            current = os.path.join(current, part)
            if os.path.islink(current):
                target = os.readlink(current)
                self.symlinks[current] = target
                rest = os.path.join(*parts[index + 1 :]) if index + 1 < len(parts) else ""
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), target, rest))
                self.add_host_path(resolved)
                return
        if os.path.isdir(path):
            for directory, subdirectories, names in os.walk(path):
                # os.walk lists a symlink to a folder among the folders and does not enter it.
                links = [name for name in subdirectories if os.path.islink(os.path.join(directory, name))]
                for name in names + links:
                    self.add_host_path(os.path.join(directory, name))
        elif os.path.exists(path):
            self.files[path] = Path(path)

    def key(self) -> str:
        """Changes whenever what the layer would hold does."""
        digest = hashlib.sha256()
        for path, source in sorted(self.files.items()):
            status = source.stat()
            digest.update(f"f {path} {status.st_size} {status.st_mtime_ns} {status.st_mode}\n".encode())
        for path, target in sorted(self.symlinks.items()):
            digest.update(f"l {path} {target}\n".encode())
        for path, owner in sorted(self.directories.items()):
            digest.update(f"d {path} {owner}\n".encode())
        for path, data in sorted(self.contents.items()):
            digest.update(f"c {path} {hashlib.sha256(data).hexdigest()}\n".encode())
        return digest.hexdigest()

    def write(self, output) -> None:
        """The layer as a tar stream, parents before children, every parent directory present."""
        entries: dict[str, tuple] = {}
        for path, (mode, uid, gid) in self.directories.items():
            entries[path] = ("dir", mode, uid, gid)
        for path, source in self.files.items():
            entries[path] = ("file", source)
        for path, data in self.contents.items():
            entries[path] = ("data", data)
        for path, target in self.symlinks.items():
            entries[path] = ("link", target)
        for path in list(entries):
            parent = os.path.dirname(path)
            while parent != "/" and parent not in entries:
                entries[parent] = ("dir", 0o755, 0, 0)
                parent = os.path.dirname(parent)
        with tarfile.open(fileobj=output, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(entries, key=lambda p: (p.count("/"), p)):
                kind, *rest = entries[path]
                info = tarfile.TarInfo(path.lstrip("/"))
                if kind == "dir":
                    info.type, (info.mode, info.uid, info.gid) = tarfile.DIRTYPE, rest
                    tar.addfile(info)
                elif kind == "link":
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, rest[0], 0o777
                    tar.addfile(info)
                elif kind == "data":
                    info.size, info.mode = len(rest[0]), 0o644
                    tar.addfile(info, io.BytesIO(rest[0]))
                else:
                    status = rest[0].stat()
                    info.size, info.mode, info.mtime = status.st_size, status.st_mode & 0o7777, int(status.st_mtime)
                    with open(rest[0], "rb") as source:
                        tar.addfile(info, source)


@dataclass
class Image:
    """An image to write: its reference (`name:tag`), layers and the OCI config's `config` part."""

    reference: str
    layers: list[Layer]
    config: dict

    def archive(self) -> Path:
        """The docker-archive tar of the image, written unless cached under the same key."""
        key = hashlib.sha256(
            json.dumps([self.reference, self.config, [layer.key() for layer in self.layers]]).encode()
        ).hexdigest()[:16]
        slug = re.sub(r"[^a-z0-9.-]+", "-", self.reference.lower())
        path = IMAGE_CACHE / f"{slug}-{key}.tar"
        if path.exists():
            return path
        IMAGE_CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=IMAGE_CACHE) as work:
            write_docker_archive(Path(work) / "image.tar", self)
            for stale in IMAGE_CACHE.glob(f"{slug}-*.tar"):
                stale.unlink()
            os.replace(Path(work) / "image.tar", path)
        return path


class _HashingWriter(io.RawIOBase):
    """A file that hashes what is written to it."""

    def __init__(self, output):
        self.output, self.digest = output, hashlib.sha256()

    def writable(self):
        return True

    def write(self, data):
        self.digest.update(data)
        return self.output.write(data)


def write_docker_archive(path: Path, image: Image):
    """`image` as a docker-archive tar at `path` (layers uncompressed)."""
    work = path.parent
    diff_ids = []
    for index, layer in enumerate(image.layers):
        with open(work / f"layer{index}.tar", "wb") as output:
            writer = _HashingWriter(output)
            layer.write(writer)
        diff_ids.append(f"sha256:{writer.digest.hexdigest()}")
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": image.config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "tests/k8s/images.py"} for _ in image.layers],
        },
        sort_keys=True,
    ).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    layer_names = [f"{diff_id.removeprefix('sha256:')}/layer.tar" for diff_id in diff_ids]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [image.reference], "Layers": layer_names}]).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for index, name in enumerate(layer_names):
            tar.add(work / f"layer{index}.tar", arcname=name)
            (work / f"layer{index}.tar").unlink()


def archive_references(path: Path) -> list[str]:
    """The image names a docker-archive tar holds (its manifest's `RepoTags`)."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return [tag for image in manifest for tag in image.get("RepoTags") or []]


def lab_image_archive() -> tuple[Path, str]:
    """An archive of an image with JupyterLab and ScienceLab, and the image's reference: the
    docker-archive SCIENCELAB_LAB_IMAGE_ARCHIVE names; else the `lab` image `make images` built
    last (`make test` builds it first); else the stand-in `lab_test_image()`."""
    if archive := os.environ.get(LAB_IMAGE_ARCHIVE_ENV):
        return Path(archive), archive_references(Path(archive))[0]
    lab = read_manifest()["images"].get("lab")
    if lab and Path(lab["archive"]).exists():
        return Path(lab["archive"]), lab["reference"]
    image = lab_test_image()
    return image.archive(), image.reference


def _busybox_layer() -> Layer:
    """A shell and the usual tools (busybox's applets in /usr/bin, /bin a link to it), users root
    and jovyan (1000:100) with their homes, /tmp."""
    layer = Layer(
        directories={"/tmp": (0o1777, 0, 0), "/home/jovyan": (0o755, 1000, 100)},
        contents={"/etc/passwd": PASSWD.encode(), "/etc/group": GROUP.encode()},
        symlinks={"/bin": "usr/bin", "/sbin": "usr/bin"},
    )
    busybox = os.path.realpath(BUSYBOX)
    layer.files["/usr/bin/busybox"] = Path(busybox)
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in set(applets) - {"busybox"}:
        layer.symlinks[f"/usr/bin/{applet}"] = "busybox"
    return layer


def pause_image() -> Image:
    layer = Layer(files={"/pause": KUBERNETES_DIR / "pause"})
    return Image(PAUSE_IMAGE, [layer], {"Entrypoint": ["/pause"], "User": "65535:65535"})


def probe_image() -> Image:
    return Image(PROBE_IMAGE, [_busybox_layer()], {"Env": ["PATH=/usr/bin"], "Cmd": ["sh"], "WorkingDir": "/"})


def dependency_closure(name: str) -> list[metadata.Distribution]:
    """`name`'s distribution and every one it requires, transitively, extras left out."""
    seen, pending, found = set(), [name], []
    while pending:
        distribution = metadata.distribution(pending.pop())
        key = re.sub(r"[-_.]+", "-", distribution.metadata["Name"]).lower()
        if key in seen:
            continue
        seen.add(key)
        found.append(distribution)
        for requirement in map(Requirement, distribution.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def shared_libraries(binaries: list[str]) -> set[str]:
    """What `ldd` says `binaries` load, the dynamic loader included."""
    libraries = set()
    for start in range(0, len(binaries), 200):
        result = subprocess.run(["ldd", *binaries[start : start + 200]], capture_output=True, text=True)
        libraries.update(_LDD_PATH.findall(result.stdout))
    return libraries


def _is_shared_object(path: Path) -> bool:
    return path.suffix == ".so" or ".so." in path.name


def lab_test_image() -> Image:
    """See the module docstring; the venv is the one running this process."""
    base = Layer()
    base_python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    base.add_host_path(base_python)
    stdlib = Path(sysconfig.get_path("stdlib"))
    for entry in stdlib.iterdir():
        if entry.name not in STDLIB_EXCLUDED:
            base.add_host_path(entry)

    packages = Layer()
    venv = Path(sys.prefix)
    for name in (
        "pyvenv.cfg",
        "bin/python",
        "bin/python3",
        f"bin/python{sys.version_info.major}.{sys.version_info.minor}",
    ):
        packages.add_host_path(venv / name)
    own = Layer()
    for distribution in dependency_closure("sciencelab"):
        layer = own if distribution.metadata["Name"] == "sciencelab" else packages
        for file in distribution.files or []:
            located = Path(os.path.normpath(distribution.locate_file(file)))
            if located.exists():
                layer.add_host_path(located)
    # The editable install's .pth names this checkout's folders: the packages must be there too.
    for package in ("spawner/sciencelab_spawner", "server_extension/sciencelab"):
        own.add_host_path(REPO / package)

    binaries = [base_python] + [
        str(path) for layer in (base, packages) for path in layer.files.values() if _is_shared_object(path)
    ]
    for library in shared_libraries(binaries):
        base.add_host_path(library)
    runtime = _busybox_layer()
    runtime.files.update(base.files)
    runtime.symlinks = {**base.symlinks, **runtime.symlinks}
    return Image(
        LAB_TEST_IMAGE,
        [runtime, packages, own],
        {
            "User": "1000:100",
            "WorkingDir": "/home/jovyan",
            "Env": [f"PATH={venv}/bin:/usr/local/bin:/usr/bin", "HOME=/home/jovyan", "LANG=C.UTF-8"],
            "Cmd": ["jupyterhub-singleuser"],
        },
    )
