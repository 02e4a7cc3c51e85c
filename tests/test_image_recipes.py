"""The image recipes without building anything: the commands images/build.py runs, the input hash,
the build order, and the locks (every package pinned with hashes; lab, hub and lab-gpu agree)."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from images.build import BASES, IMAGES, make_base_command, make_build_command, make_input_hash, resolve_build_order

from .container_images import read_lock
from .demo_hub import REPO

IMAGES_SOURCE = REPO / "images"
STORAGE = ["--root", "/c/storage", "--runroot", "/c/run", "--storage-driver", "overlay"]


def lock(name: str) -> dict[str, object]:
    return {(r.name, r.marker): r for r in read_lock(IMAGES_SOURCE / name / "requirements.txt")}


def requested_names(name: str) -> set[str]:
    """The packages a requirements.in names (not the files it includes with -r or -c)."""
    lines = (IMAGES_SOURCE / name / "requirements.in").read_text().splitlines()
    return {canonicalize_name(re.match(r"[A-Za-z0-9._-]+", line)[0]) for line in lines if line and line[0] not in "#-"}


def test_build_command():
    command = make_build_command(
        IMAGES["lab"],
        context=Path("/c/tmp/context"),
        base="localhost/sciencelab-base/python:bookworm-0123",
        reference="localhost/sciencelab/lab:0.1.0-abc",
        version="0.1.0",
        storage=STORAGE,
        ca_bundle=Path("/etc/ssl/certs/ca-certificates.crt"),
    )
    assert command == [
        "buildah",
        *STORAGE,
        "bud",
        "--format",
        "docker",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--layers",
        "--file",
        "/c/tmp/context/lab/Dockerfile",
        "--build-arg",
        "BASE=localhost/sciencelab-base/python:bookworm-0123",
        "--label",
        "org.opencontainers.image.version=0.1.0",
        "--label",
        "org.opencontainers.image.licenses=BSD-3-Clause",
        "--label",
        "org.opencontainers.image.base.name=localhost/sciencelab-base/python:bookworm-0123",
        "--target",
        "lab",
        "--volume",
        "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
        "--tag",
        "localhost/sciencelab/lab:0.1.0-abc",
        "/c/tmp/context",
    ]


def test_base_command():
    assert make_base_command(BASES["node"], Path("/c/rootfs.tar"), "http://mirror/debian") == [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--include=nodejs,npm,tini,ca-certificates",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--customize-hook=printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > \"$1/etc/pip.conf\"",
        "trixie",
        "/c/rootfs.tar",
        "http://mirror/debian",
    ]


def test_input_hash_follows_every_input():
    recipe, files = IMAGES["hub"], {"Dockerfile": "aa", "dist/sciencelab-0.1.0-py3-none-any.whl": "bb"}
    reference = make_input_hash(recipe, base_id="b1", context_files=files, version="0.1.0")
    assert make_input_hash(recipe, base_id="b1", context_files=dict(reversed(files.items())), version="0.1.0") == (
        reference
    )
    changed = [
        make_input_hash(recipe, base_id="b2", context_files=files, version="0.1.0"),
        make_input_hash(recipe, base_id="b1", context_files={**files, "Dockerfile": "ab"}, version="0.1.0"),
        make_input_hash(recipe, base_id="b1", context_files={**files, "extra": "cc"}, version="0.1.0"),
        make_input_hash(recipe, base_id="b1", context_files=files, version="0.2.0"),
        make_input_hash(replace(recipe, target="lab"), base_id="b1", context_files=files, version="0.1.0"),
    ]
    assert reference not in changed and len(set(changed)) == len(changed)


def test_build_order_puts_each_base_first():
    assert resolve_build_order(["lab-gpu"]) == ["lab", "lab-gpu"]
    assert resolve_build_order(["lab", "hub", "dask-worker"]) == ["hub", "dask-worker", "lab"]
    with pytest.raises(
        SystemExit, match="unknown image 'notebook'; choose from: hub, proxy, dask-worker, lab, lab-gpu"
    ):
        resolve_build_order(["notebook"])


def test_every_image_folder_has_a_recipe():
    folders = {path.parent.name for path in IMAGES_SOURCE.glob("*/Dockerfile")}
    assert folders == {recipe.folder for recipe in IMAGES.values()}
    for folder in folders:
        dockerfile = (IMAGES_SOURCE / folder / "Dockerfile").read_text()
        assert re.search(r"^ARG BASE=\S+$", dockerfile, re.M), folder


@pytest.mark.parametrize("name", ["hub", "lab", "lab-gpu"])
def test_lock_pins_every_package_with_hashes(name):
    locked = read_lock(IMAGES_SOURCE / name / "requirements.txt")
    assert locked and [r.name for r in locked if not r.hashes] == []
    assert requested_names(name) - {"sciencelab"} <= {r.name for r in locked}
    # The wheel comes from this checkout, never from the lock.
    assert "sciencelab" not in {r.name for r in locked}


def test_lab_gpu_lock_is_the_lab_lock_plus_pytorch():
    lab, gpu = lock("lab"), lock("lab-gpu")
    assert {key: gpu.get(key) for key in lab} == lab
    assert {name for name, _ in set(gpu) - set(lab)} >= {"torch", "triton"}


def test_hub_lock_has_the_lab_lock_versions():
    """jupyterhub-singleuser in users' servers and the hub are the same JupyterHub, and so on."""
    lab_versions = {}
    for requirement in lock("lab").values():
        lab_versions.setdefault(requirement.name, set()).add(requirement.version)
    hub = lock("hub").values()
    assert {r.name: r.version for r in hub if r.name in lab_versions and r.version not in lab_versions[r.name]} == {}
    # Nothing is the hub's alone: the login (oauthenticator) is one of ScienceLab's own dependencies.
    assert requested_names("hub") - set(lab_versions) == set()


def test_proxy_pins_the_demo_proxy_version():
    """The proxy image runs the configurable-http-proxy that the demo hub and its tests run."""
    image_lock = json.loads((IMAGES_SOURCE / "proxy" / "package-lock.json").read_text())["packages"]
    root_lock = json.loads((REPO / "package-lock.json").read_text())["packages"]
    chp = "node_modules/configurable-http-proxy"
    assert image_lock[chp]["version"] == root_lock[chp]["version"]
    package = json.loads((IMAGES_SOURCE / "proxy" / "package.json").read_text())
    assert package["dependencies"] == {"configurable-http-proxy": root_lock[chp]["version"]}
    # npm ci checks every tarball against its sha512.
    assert [path for path, entry in image_lock.items() if path and not entry.get("integrity")] == []
