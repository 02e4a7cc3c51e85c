"""Build ScienceLab's container images without a daemon (`make images` runs `python -m images.build`).

- Bases: a minimal Debian made with mmdebstrap from the Debian mirror (python3 on bookworm for the
  Python images, nodejs on trixie for the proxy), imported into a containers-storage under the
  cache; remade only when their recipe changes. `--base FOLDER=IMAGE` builds on a registry image instead.
- Images: `buildah bud` with chroot isolation on the host network, with its layer cache, from a
  context staged like images/ (the image's folder, common/, and the ScienceLab wheel built from this
  checkout in dist/), with the OCI labels of version, license and base.
- Each image's tag is the hash of everything that goes into it (base image, staged context, build
  arguments), so an unchanged image is not built again: `make images` with nothing changed takes
  the seconds the wheel takes to build.
- Each image is saved as a docker-archive tarball, `<cache>/images/<name>.tar`, that
  `ctr -n k8s.io images import`, `podman load` and `docker load` accept; `<cache>/images/images.json`
  names the image (`localhost/sciencelab/<name>:<version>-<hash>`), its ID, archive and size.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES_SOURCE = REPO / "images"
CACHE_DIR = Path(os.environ.get("SCIENCELAB_CACHE_DIR") or Path.home() / ".cache" / "sciencelab")
IMAGES_DIR = CACHE_DIR / "images"
MANIFEST = IMAGES_DIR / "images.json"
DEBIAN_MIRROR = os.environ.get("SCIENCELAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# The CA bundle of this machine, bind-mounted over the image's own while `RUN` steps download from
# PyPI and npm (a TLS-intercepting proxy's CA lives here); it never lands in a layer.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
LICENSE = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
REPOSITORY = "localhost/sciencelab"
BASE_REPOSITORY = "localhost/sciencelab-base"
# Flags of every build; part of each image's hash, so changing them rebuilds.
BUILD_FLAGS = ("--format", "docker", "--isolation", "chroot", "--network", "host", "--layers")
PODMAN_RUN_FLAGS = ("--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file")
# How long the layers of earlier builds stay, for a rebuild to reuse.
LAYER_CACHE_HOURS = 7 * 24
TOOLS = ("mmdebstrap", "buildah", "podman", "runc")


@dataclass(frozen=True)
class BaseRecipe:
    """A minimal Debian for the images to build on: `suite` with `packages` (tini included, so
    common/setup-runtime.sh has nothing to install)."""

    name: str
    suite: str
    packages: tuple[str, ...]


@dataclass(frozen=True)
class ImageRecipe:
    """One image: the Dockerfile in `images/<folder>/`, its `target` stage, built on `base` (a
    `BaseRecipe` name, or the name of another image, which is built first)."""

    name: str
    folder: str
    base: str
    target: str | None = None
    wheel: bool = True


BASES = {
    recipe.name: recipe
    for recipe in (
        # pip in the venvs reads /etc/pip.conf, which points it at Debian's CA bundle (see make_base_command).
        BaseRecipe("python", "bookworm", ("python3", "python3-venv", "tini", "ca-certificates")),
        # Debian's Node.js is 18 on bookworm; configurable-http-proxy 5 needs 20.
        BaseRecipe("node", "trixie", ("nodejs", "npm", "tini", "ca-certificates")),
    )
}
IMAGES = {
    recipe.name: recipe
    for recipe in (
        ImageRecipe("hub", "hub", "python"),
        ImageRecipe("proxy", "proxy", "node", wheel=False),
        ImageRecipe("dask-worker", "lab", "python", target="dask-worker"),
        ImageRecipe("lab", "lab", "python", target="lab"),
        ImageRecipe("lab-gpu", "lab-gpu", "lab"),
    )
}
# What `make images` builds. lab-gpu adds PyTorch with CUDA to lab (3 GB of wheels, 5.6 GB unpacked):
# `make images-gpu` builds it.
DEFAULT_IMAGES = ("hub", "proxy", "dask-worker", "lab")


def storage_options(images_dir: Path = IMAGES_DIR) -> list[str]:
    """buildah's and podman's options for the containers-storage under the cache."""
    runroot = images_dir / "run"
    if len(str(runroot)) > 50:
        # podman refuses longer run roots (its containers' socket paths must stay short).
        runroot = Path(tempfile.gettempdir()) / f"sciencelab-images-{digest(str(images_dir))[:12]}"
    return [
        "--root",
        str(images_dir / "storage"),
        "--runroot",
        str(runroot),
        "--storage-driver",
        os.environ.get("SCIENCELAB_IMAGES_STORAGE_DRIVER", "overlay"),
    ]


def make_base_command(recipe: BaseRecipe, output: Path, mirror: str = DEBIAN_MIRROR) -> list[str]:
    """The mmdebstrap command that writes `recipe`'s root file system to the tarball `output`."""
    return [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        # Documentation and translations have no reader in a container.
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        # Debian's own pip uses the system's CA bundle; pip in a venv, unless told, its own copy.
        "--customize-hook=printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > \"$1/etc/pip.conf\"",
        recipe.suite,
        str(output),
        mirror,
    ]


def base_reference(recipe: BaseRecipe) -> str:
    """The local base image's name: its suite and the hash of its mmdebstrap command (any mirror)."""
    command = make_base_command(recipe, Path("rootfs.tar"), mirror="MIRROR")
    return f"{BASE_REPOSITORY}/{recipe.name}:{recipe.suite}-{digest(json.dumps(command))[:12]}"


def make_build_command(
    recipe: ImageRecipe,
    *,
    context: Path,
    base: str,
    reference: str,
    version: str,
    storage: list[str],
    ca_bundle: Path | None,
) -> list[str]:
    """The `buildah bud` command that builds `recipe` from the staged `context` on `base` as `reference`.
    The labels every image has come from here, as a CI's metadata step would give them; the
    Dockerfiles set their title and description."""
    command = ["buildah", *storage, "bud", *BUILD_FLAGS, "--file", str(context / recipe.folder / "Dockerfile")]
    command += ["--build-arg", f"BASE={base}"]
    for name, value in (("version", version), ("licenses", LICENSE), ("base.name", base)):
        command += ["--label", f"org.opencontainers.image.{name}={value}"]
    if recipe.target:
        command += ["--target", recipe.target]
    if ca_bundle is not None:
        command += ["--volume", f"{ca_bundle}:/etc/ssl/certs/ca-certificates.crt:ro"]
    return [*command, "--tag", reference, str(context)]


def make_input_hash(recipe: ImageRecipe, *, base_id: str, context_files: dict[str, str], version: str) -> str:
    """The hash of everything an image is made of: its recipe, the base image's ID, the sha256 of
    each staged context file, the version and the build flags."""
    inputs = {
        "recipe": [recipe.name, recipe.folder, recipe.base, recipe.target, recipe.wheel],
        "base": base_id,
        "context": dict(sorted(context_files.items())),
        "version": version,
        "flags": BUILD_FLAGS,
    }
    return digest(json.dumps(inputs, sort_keys=True))


def resolve_build_order(names: list[str]) -> list[str]:
    """`names` with the images they build on, each after its base, in the order of IMAGES."""
    unknown = [name for name in names if name not in IMAGES]
    if unknown:
        raise SystemExit(f"images.build: unknown image {unknown[0]!r}; choose from: {', '.join(IMAGES)}")
    wanted = set()
    for name in names:
        while name in IMAGES and name not in wanted:
            wanted.add(name)
            name = IMAGES[name].base
    return [name for name in IMAGES if name in wanted]


def digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_manifest(path: Path = MANIFEST) -> dict:
    """The manifest of the last builds: {"images": {name: entry}}; empty before the first."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"images": {}}


class MissingBase(LookupError):
    """A local base image is not in the storage, and this builder may not make it."""


class Builder:
    """Builds images into the storage under `images_dir`, and their archives and manifest beside it."""

    def __init__(self, images_dir: Path = IMAGES_DIR, bases: dict[str, str] | None = None):
        self.images_dir = images_dir
        self.storage = storage_options(images_dir)
        self.base_overrides = bases or {}
        self.references: dict[str, str] = {}
        self.manifest_path = images_dir / "images.json"
        self.make_bases = True

    def podman(self, *args: str, capture: bool = False) -> str:
        result = subprocess.run(
            ["podman", *self.storage, *PODMAN_RUN_FLAGS, *args],
            check=True,
            text=True,
            stdout=subprocess.PIPE if capture else None,
        )
        return result.stdout.strip() if capture else ""

    def exists(self, reference: str) -> bool:
        return subprocess.run(["podman", *self.storage, "image", "exists", reference]).returncode == 0

    def image_id(self, reference: str) -> str:
        return self.podman("image", "inspect", "--format", "{{.Id}}", reference, capture=True)

    def ensure_base(self, recipe: BaseRecipe) -> str:
        """The local base image of `recipe`, made with mmdebstrap unless it is already in the storage."""
        reference = base_reference(recipe)
        if self.exists(reference):
            return reference
        if not self.make_bases:
            raise MissingBase(f"the {recipe.name} base {reference} is not built: run `make images`")
        print(f"images: making the {recipe.name} base ({recipe.suite}, about a minute) ...", flush=True)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=self.images_dir) as scratch:
            rootfs = Path(scratch) / "rootfs.tar"
            subprocess.run(make_base_command(recipe, rootfs), check=True, stdout=subprocess.DEVNULL)
            self.podman("import", "--quiet", str(rootfs), reference, capture=True)
        print(f"images: {reference} in {time.monotonic() - started:.0f} s", flush=True)
        return reference

    def base_for(self, recipe: ImageRecipe) -> str:
        if recipe.folder in self.base_overrides:
            return self.base_overrides[recipe.folder]
        if recipe.base in self.references:
            return self.references[recipe.base]
        if recipe.base in IMAGES:
            raise SystemExit(f"images.build: {recipe.name} builds on {recipe.base}, which was not built")
        return self.ensure_base(BASES[recipe.base])

    def stage_context(self, recipe: ImageRecipe, wheel: Path | None, context: Path) -> dict[str, str]:
        """Copy what the image's Dockerfile uses to `context`, laid out as images/ (its folder,
        common/, the wheel in dist/); the sha256 of each file."""
        for folder in (recipe.folder, "common"):
            shutil.copytree(IMAGES_SOURCE / folder, context / folder)
        if recipe.wheel:
            (context / "dist").mkdir()
            shutil.copy2(wheel, context / "dist" / wheel.name)
        return {
            str(path.relative_to(context)): file_digest(path) for path in sorted(context.rglob("*")) if path.is_file()
        }

    def plan(self, recipe: ImageRecipe, wheel: Path | None, version: str, context: Path) -> tuple[str, str]:
        """Stage `recipe`'s context in `context`; the reference its build gets, and its base."""
        base = self.base_for(recipe)
        if not self.exists(base):
            # A registry base (--base) is pulled by buildah itself; its ID is known after.
            subprocess.run(["buildah", *self.storage, "pull", "--quiet", base], check=True, stdout=subprocess.DEVNULL)
        files = self.stage_context(recipe, wheel, context)
        inputs = make_input_hash(recipe, base_id=self.image_id(base), context_files=files, version=version)
        return f"{REPOSITORY}/{recipe.name}:{version}-{inputs[:12]}", base

    def build(self, recipe: ImageRecipe, wheel: Path | None, version: str) -> dict:
        """Build `recipe` unless its archive and image are up to date; its manifest entry."""
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=self.images_dir) as scratch:
            context = Path(scratch) / "context"
            reference, base = self.plan(recipe, wheel, version, context)
            archive = self.images_dir / f"{recipe.name}.tar"
            previous = read_manifest(self.manifest_path)["images"].get(recipe.name, {})
            up_to_date = previous.get("reference") == reference and archive.exists()
            self.references[recipe.name] = reference
            if up_to_date and self.exists(reference):
                return {**previous, "built": False}
            if up_to_date:
                print(f"images: {recipe.name}: loading {archive} into the build storage", flush=True)
                self.podman("load", "--quiet", "--input", str(archive), capture=True)
            else:
                self.run_build(recipe, context=context, base=base, reference=reference, version=version)
                partial = archive.with_suffix(".tar.partial")
                partial.unlink(missing_ok=True)
                self.podman("save", "--quiet", "--format", "docker-archive", "--output", str(partial), reference)
                partial.replace(archive)
        self.forget_older(recipe.name, reference)
        return {
            "reference": reference,
            "repository": reference.rsplit(":", 1)[0],
            "tag": reference.rsplit(":", 1)[1],
            "id": self.image_id(reference),
            "base": base,
            "archive": str(archive),
            "archive_bytes": archive.stat().st_size,
            "size_bytes": int(self.podman("image", "inspect", "--format", "{{.Size}}", reference, capture=True)),
            "seconds": round(time.monotonic() - started, 1),
            "built": not up_to_date,
        }

    def run_build(self, recipe: ImageRecipe, *, context: Path, base: str, reference: str, version: str):
        print(f"images: building {reference} on {base} ...", flush=True)
        command = make_build_command(
            recipe,
            context=context,
            base=base,
            reference=reference,
            version=version,
            storage=self.storage,
            ca_bundle=CA_BUNDLE if CA_BUNDLE.exists() else None,
        )
        log = self.images_dir / f"{recipe.name}.build.log"
        with log.open("w") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
        if result.returncode:
            tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
            raise SystemExit(f"{tail}\nimages: building {recipe.name} failed; the whole log: {log}")

    def current_references(self, names: list[str]) -> dict[str, str]:
        """What `make images` would tag `names` (and the images they build on) now, without building
        anything; raises MissingBase when a local base is not there."""
        self.make_bases = False
        with tempfile.TemporaryDirectory(dir=self.images_dir) as scratch:
            wheel, version = build_wheel(Path(scratch))
            for name in resolve_build_order(names):
                self.references[name], _ = self.plan(IMAGES[name], wheel, version, Path(scratch) / name)
        return {name: self.references[name] for name in names}

    def forget_older(self, name: str, keep: str):
        """Untag this image's earlier builds; their layers stay in the layer cache for a week."""
        listed = self.podman("images", "--format", "{{.Repository}}:{{.Tag}}", f"{REPOSITORY}/{name}", capture=True)
        for reference in set(listed.split()) - {keep}:
            # `untag IMAGE NAME` removes that one name; without NAME, every name of the image, which
            # may be `keep`'s too (a build whose every step was cached gives the same image).
            self.podman("untag", reference, reference, capture=True)

    def write_manifest(self, entries: dict[str, dict]):
        manifest = read_manifest(self.manifest_path)
        manifest["images"].update(entries)
        partial = self.manifest_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        partial.replace(self.manifest_path)


def build_wheel(into: Path) -> tuple[Path, str]:
    """The ScienceLab wheel of this checkout, with the lab extension that `make` built; its version."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(into), str(REPO)],
        check=True,
    )
    wheel = next(into.glob("sciencelab-*.whl"))
    return wheel, wheel.name.split("-")[1]


def missing_tools() -> list[str]:
    """The build tools not installed (`make images` installs them)."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def format_size(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(prog="python -m images.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(DEFAULT_IMAGES), help=f"images to build: {', '.join(IMAGES)}")
    parser.add_argument(
        "--base",
        action="append",
        default=[],
        metavar="FOLDER=BASE",
        help="build the Dockerfile of images/FOLDER on the registry image BASE instead of the local Debian base"
        " (repeatable; `lab` is the base of both lab and dask-worker)",
    )
    args = parser.parse_args(argv)
    folders = sorted({recipe.folder for recipe in IMAGES.values()})
    overrides = dict(item.split("=", 1) for item in args.base if "=" in item)
    if len(overrides) != len(args.base) or set(overrides) - set(folders):
        parser.error(f"--base takes FOLDER=BASE with FOLDER one of: {', '.join(folders)}; got {args.base}")
    missing = missing_tools()
    if missing:
        raise SystemExit(f"images.build: {', '.join(missing)} not found; `make images` installs them with apt")
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    builder = Builder(bases=overrides)
    entries = {}
    with tempfile.TemporaryDirectory(dir=IMAGES_DIR) as scratch:
        wheel, version = build_wheel(Path(scratch))
        for name in resolve_build_order(args.names):
            entries[name] = builder.build(IMAGES[name], wheel, version)
            builder.write_manifest({name: entries[name]})
    if any(entry["built"] for entry in entries.values()):
        # Layers no tagged image uses: earlier builds and buildah's cache of their steps.
        builder.podman("image", "prune", "--force", "--filter", f"until={LAYER_CACHE_HOURS}h", capture=True)
    for name, entry in entries.items():
        state = f"built in {entry['seconds']:.0f} s" if entry["built"] else "up to date"
        print(f"images: {name:<12} {format_size(entry['size_bytes']):>8}  {entry['reference']}  ({state})")
    print(f"images: {MANIFEST} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
