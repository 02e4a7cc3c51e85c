"""The container images `make images` built, run with podman as the cluster will run them.

Every test here runs the images of this checkout: the `images` fixture fails (skips without
CI=true) when the tools are missing or when `make images` has not built what this checkout would.
The containers share the host's network and bind to 127.0.0.1 on free ports.
"""

import json
import secrets
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
import requests
from packaging.utils import canonicalize_name

from images.build import MANIFEST, Builder, MissingBase, storage_options
from sciencelab import __version__
from sciencelab_spawner.demo import free_port

from .container_images import Podman, PrivateContainerd, built_images, missing_tools, read_lock, wait_for
from .demo_hub import REPO
from .prerequisites import require
from .service_process import TRACEBACK
from .test_packaging import ANSI_COLOUR

pytestmark = pytest.mark.images

TESTED = ("hub", "proxy", "lab", "dask-worker")
# The images on the local Debian bases (Python 3.11): what each may weigh before it is a regression.
SIZE_BUDGETS = {"hub": 600e6, "proxy": 450e6, "lab": 1.8e9, "dask-worker": 1.8e9}
PROFILES = REPO / "docs" / "examples" / "profiles.yaml"


@pytest.fixture(scope="session")
def images() -> dict[str, dict]:
    """The manifest entries (reference, id, archive, sizes) of the images under test, checked to be
    what `make images` builds from this checkout now."""
    require(missing_tools())
    entries = built_images()
    require(
        None if set(TESTED) <= set(entries) else f"{MANIFEST} lacks {set(TESTED) - set(entries)}: run `make images`"
    )
    try:
        current = Builder().current_references(list(TESTED))
    except MissingBase as missing:
        require(str(missing))
    stale = {name: entries[name]["reference"] for name in TESTED if entries[name]["reference"] != current[name]}
    require(None if not stale else f"the images {sorted(stale)} are older than this checkout: run `make images`")
    return {name: entries[name] for name in TESTED}


@pytest.fixture(scope="session")
def podman() -> Podman:
    return Podman()


def marker_environment(podman: Podman, reference: str) -> dict[str, str]:
    """The environment markers of the image's Python (its patch version picks some pins)."""
    script = "import json; from packaging.markers import default_environment; print(json.dumps(default_environment()))"
    return json.loads(podman.run(reference, "python", "-c", script))


def python_packages(podman: Podman, reference: str) -> dict[str, str]:
    listed = json.loads(podman.run(reference, "pip", "list", "--format", "json", "--disable-pip-version-check"))
    return {canonicalize_name(item["name"]): item["version"] for item in listed}


@pytest.mark.parametrize("name", TESTED)
def test_image_runs_as_uid_1000_under_tini(images, podman, name):
    reference = images[name]["reference"]
    config = podman.inspect(reference)["Config"]
    assert config["User"] == "1000"
    assert config["Entrypoint"] == ["tini", "-g", "--"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "BSD-3-Clause"
    assert labels["org.opencontainers.image.title"].startswith("ScienceLab")
    assert labels["org.opencontainers.image.base.name"] == images[name]["base"]
    # PID 1 is tini; the command runs as its child, as uid 1000.
    assert podman.run(reference, "sh", "-c", "id -u; cat /proc/1/comm").split() == ["1000", "tini"]


@pytest.mark.parametrize("name", TESTED)
def test_archive_holds_the_tested_image(images, name):
    """The docker-archive that `ctr images import` reads: one image, tagged with the reference, with
    the ID of the image the tests run."""
    entry = images[name]
    with tarfile.open(entry["archive"]) as archive:
        (manifest,) = json.load(archive.extractfile("manifest.json"))
    assert manifest["RepoTags"] == [entry["reference"]]
    assert manifest["Config"].removeprefix("sha256:").removesuffix(".json") == entry["id"]


def test_archive_loads_into_an_empty_storage(images, tmp_path):
    """`podman load` of an archive alone (the proxy's: the smallest) gives the same image."""
    fresh = Podman(storage_options(tmp_path))
    try:
        fresh("load", "--quiet", "--input", images["proxy"]["archive"])
        assert fresh.inspect(images["proxy"]["reference"])["Id"] == images["proxy"]["id"]
    finally:
        fresh("rmi", "--all", "--force")


def test_archive_imports_into_containerd(images, tmp_path):
    """What the test cluster's node does with an archive: `ctr -n k8s.io images import`, then a
    container of it runs as uid 1000 (the proxy's archive: the smallest)."""
    require(None if shutil.which("containerd") else "containerd not installed: `make images` installs it")
    containerd = PrivateContainerd(tmp_path).start()
    try:
        reference = images["proxy"]["reference"]
        containerd.ctr("images", "import", images["proxy"]["archive"])
        assert containerd.ctr("images", "list", "--quiet").split() == [reference]
        # `ctr run` replaces the image's whole command line (tini included), unlike a kubelet.
        assert containerd.ctr("run", "--rm", "--net-host", reference, "probe", "id", "-u").strip() == "1000"
    finally:
        containerd.stop()


def test_image_sizes(images):
    sizes = {name: entry["size_bytes"] for name, entry in images.items()}
    print("image sizes (MB):", {name: round(size / 1e6) for name, size in sizes.items()})
    assert {name: size for name, size in sizes.items() if size > SIZE_BUDGETS[name]} == {}


@pytest.fixture(scope="module")
def hub_and_proxy(images, podman, tmp_path_factory):
    """The proxy image's configurable-http-proxy and the hub image's JupyterHub with ScienceLab
    (local spawner, the example profiles, the `sciencelab` service), as the chart runs them: the hub
    does not start the proxy, it configures it through the proxy's API. Yields the public URL and
    the hub container; both containers are removed after."""
    state = tmp_path_factory.mktemp("hub-image")
    public, api, hub, service = free_port(), free_port(), free_port(), free_port()
    token, password = secrets.token_hex(32), secrets.token_urlsafe(16)
    config = state / "jupyterhub_config.py"
    config.write_text(
        textwrap.dedent(f"""
        from sciencelab_spawner.hub_config import configure_sciencelab

        c.JupyterHub.bind_url = "http://127.0.0.1:{public}"
        c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub}"
        c.ConfigurableHTTPProxy.should_start = False
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api}"
        c.JupyterHub.authenticator_class = "shared-password"
        c.SharedPasswordAuthenticator.user_password = {password!r}
        c.Authenticator.allowed_users = {{"alice"}}
        configure_sciencelab(c, profiles_file="/usr/local/etc/jupyterhub/profiles.yaml", service_port={service})
        """)
    )
    secret = ("--env", f"CONFIGPROXY_AUTH_TOKEN={token}")
    proxy = podman.start(
        images["proxy"]["reference"],
        "configurable-http-proxy",
        "--ip=127.0.0.1",
        f"--port={public}",
        "--api-ip=127.0.0.1",
        f"--api-port={api}",
        f"--default-target=http://127.0.0.1:{hub}",
        name=f"sciencelab-test-proxy-{public}",
        options=secret,
    )
    hub_container = None
    try:
        # Any answer will do: 503 until the hub is up.
        wait_for(lambda: requests.get(f"http://127.0.0.1:{public}/", timeout=2).status_code, proxy, "proxy answer")
        hub_container = podman.start(
            images["hub"]["reference"],
            name=f"sciencelab-test-hub-{public}",
            options=(
                *secret,
                "--volume",
                f"{config}:/usr/local/etc/jupyterhub/jupyterhub_config.py:ro",
                "--volume",
                f"{PROFILES}:/usr/local/etc/jupyterhub/profiles.yaml:ro",
            ),
        )
        url = f"http://127.0.0.1:{public}"
        wait_for(lambda: requests.get(f"{url}/hub/api/", timeout=2).ok, hub_container, "hub API through the proxy")
        # The hub routes its service once the service answers.
        routes = f"http://127.0.0.1:{api}/api/routes"
        headers = {"Authorization": f"token {token}"}
        in_proxy = lambda: "/services/sciencelab" in requests.get(routes, headers=headers, timeout=2).json()  # noqa: E731
        wait_for(in_proxy, hub_container, "route of the sciencelab service")
        yield {"url": url, "password": password, "hub": hub_container, "proxy": proxy, "api": api, "token": token}
        assert TRACEBACK not in hub_container.logs()
    finally:
        for container in (hub_container, proxy):
            if container:
                container.stop()


def test_hub_answers_through_the_proxy(hub_and_proxy):
    answer = requests.get(f"{hub_and_proxy['url']}/hub/api/", timeout=10)
    assert answer.status_code == 200
    assert answer.json()["version"] == read_version("jupyterhub", "hub")
    # The hub put its route into the proxy, through the proxy's API with the shared token.
    routes = requests.get(
        f"http://127.0.0.1:{hub_and_proxy['api']}/api/routes",
        headers={"Authorization": f"token {hub_and_proxy['token']}"},
        timeout=10,
    ).json()
    assert "/" in routes


def test_hub_runs_the_sciencelab_service(hub_and_proxy):
    """The hub started ScienceLab's service from the image: alice's profiles through the proxy."""
    url = hub_and_proxy["url"]
    created = requests.post(
        f"{url}/hub/api/users/alice/tokens",
        json={"auth": {"username": "alice", "password": hub_and_proxy["password"]}, "note": "image test"},
        timeout=30,
    )
    created.raise_for_status()
    headers = {"Authorization": f"token {created.json()['token']}"}
    answer = requests.get(f"{url}/services/sciencelab/api/profiles", headers=headers, timeout=30)
    assert answer.status_code == 200, hub_and_proxy["hub"].logs()
    slugs = [profile["slug"] for profile in answer.json()["profiles"]]
    assert "cpu" in slugs


def test_hub_image_imports_every_hub_side_module(images, podman):
    """The hub's lock holds what sciencelab_spawner imports (the wheel went in without its
    dependencies): every module imports."""
    script = (
        "import importlib, pkgutil, sciencelab_spawner as p\n"
        "for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.'): importlib.import_module(m.name)\n"
        "print('ok')"
    )
    assert podman.run(images["hub"]["reference"], "python", "-c", script).strip() == "ok"


def read_version(package: str, lock: str) -> str:
    return next(r.version for r in read_lock(REPO / "images" / lock / "requirements.txt") if r.name == package)


@pytest.fixture(scope="module")
def lab_server(images, podman):
    """`jupyter lab` in the lab image on a free port with a token; removed after."""
    port, token = free_port(), secrets.token_hex(24)
    container = podman.start(
        images["lab"]["reference"],
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        name=f"sciencelab-test-lab-{port}",
    )
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
    try:
        wait_for(lambda: requests.get(f"{url}/api/status", headers=headers, timeout=2).ok, container, "Jupyter API")
        yield {"url": url, "headers": headers, "container": container}
        assert TRACEBACK not in container.logs()
    finally:
        container.stop()


def test_lab_serves_jupyterlab_with_sciencelab(lab_server):
    url, headers = lab_server["url"], lab_server["headers"]
    assert requests.get(f"{url}/api/status", headers=headers, timeout=10).status_code == 200
    info = requests.get(f"{url}/sciencelab/api/info", headers=headers, timeout=10)
    assert info.status_code == 200, info.text
    # The lab page's configuration lists the prebuilt lab extension.
    page = requests.get(f"{url}/lab", headers=headers, timeout=30)
    assert page.status_code == 200
    assert '"name": "@sciencelab/labextension"' in page.text


def test_lab_lists_sciencelab_as_enabled(images, podman):
    listing = podman.run(
        images["lab"]["reference"], "sh", "-c", "jupyter server extension list 2>&1; jupyter labextension list 2>&1"
    )
    listing = ANSI_COLOUR.sub("", listing)
    assert "sciencelab enabled" in listing and f"sciencelab {__version__} OK" in listing, listing
    assert f"@sciencelab/labextension v{__version__} enabled OK (python, sciencelab)" in listing, listing
    # The command KubeSpawner runs, from the same lock as the hub.
    version = podman.run(images["lab"]["reference"], "jupyterhub-singleuser", "--version")
    assert version.strip() == read_version("jupyterhub", "hub")


def test_dask_worker_image_computes_for_a_lab_scheduler(images, podman):
    """A scheduler in the lab image, a worker in the dask-worker image, a client in the lab image."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = podman.start(
        images["lab"]["reference"],
        "dask",
        "scheduler",
        "--host=127.0.0.1",
        f"--port={port}",
        "--no-dashboard",
        name=f"sciencelab-test-scheduler-{port}",
    )
    worker = None
    try:
        worker = podman.start(
            images["dask-worker"]["reference"],
            "dask",
            "worker",
            address,
            "--nthreads=1",
            "--no-dashboard",
            "--host=127.0.0.1",
            name=f"sciencelab-test-worker-{port}",
        )
        script = (
            "import sys; from distributed import Client\n"
            f"client = Client({address!r}, timeout=60)\n"
            "client.wait_for_workers(1, timeout=60)\n"
            "print(client.submit(sum, [1, 2, 3]).result(), *client.run(lambda: sys.executable).values())"
        )
        answer = podman.run(images["lab"]["reference"], "python", "-c", script, timeout=180)
        assert answer.split() == ["6", "/opt/sciencelab/venv/bin/python3"]
    finally:
        for container in (worker, scheduler):
            if container:
                container.stop()


def test_lab_and_dask_worker_have_the_same_python_packages(images, podman):
    lab = python_packages(podman, images["lab"]["reference"])
    assert python_packages(podman, images["dask-worker"]["reference"]) == lab
    # By construction: lab is the dask-worker stage plus settings, so it shares every layer of it.
    worker_layers = podman.inspect(images["dask-worker"]["reference"])["RootFS"]["Layers"]
    assert podman.inspect(images["lab"]["reference"])["RootFS"]["Layers"][: len(worker_layers)] == worker_layers


@pytest.mark.parametrize("name", ["hub", "lab"])
def test_environment_is_exactly_its_lock(images, podman, name):
    """pip installed the lock (with --require-hashes) and the wheel: nothing more, nothing less."""
    installed = python_packages(podman, images[name]["reference"])
    environment = marker_environment(podman, images[name]["reference"])
    lock = read_lock(REPO / "images" / name / "requirements.txt")
    locked = {r.name: r.version for r in lock if r.applies(environment)}
    # The venvs' own installers, which the locks do not pin.
    for tool in ("pip", "setuptools"):
        if tool not in locked:
            installed.pop(tool, None)
    assert installed == {**locked, "sciencelab": __version__}


def test_lab_gpu_lock_resolves_on_the_lab_image(images, podman):
    """The lab-gpu image is too big to build in `make test` (PyTorch with CUDA: about 3 GB of
    wheels): pip resolves its lock inside the lab image, with hashes, against PyPI, and would add
    exactly the packages lab lacks, changing none of the lab's."""
    lock = REPO / "images" / "lab-gpu" / "requirements.txt"
    report = podman.run(
        images["lab"]["reference"],
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--require-hashes",
        "--report=-",
        "--requirement=/tmp/requirements-gpu.txt",
        options=(
            "--volume",
            f"{lock}:/tmp/requirements-gpu.txt:ro",
            # This machine's CA bundle, as the builds have it (a TLS-intercepting proxy's CA lives here).
            "--volume",
            "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
        ),
        timeout=600,
    )
    would_install = {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in json.loads(report)["install"]
    }
    environment = marker_environment(podman, images["lab"]["reference"])
    lab = {r.name for r in read_lock(REPO / "images" / "lab" / "requirements.txt") if r.applies(environment)}
    gpu = {r.name: r.version for r in read_lock(lock) if r.applies(environment)}
    assert would_install == {name: version for name, version in gpu.items() if name not in lab}
    assert "torch" in would_install


@pytest.mark.gpu  # the GPU image's own check: only where `make images-gpu` built it
def test_lab_gpu_image_loads_cuda_pytorch(images, podman):
    """Where `make images-gpu` built lab-gpu for this checkout: PyTorch and its CUDA libraries load
    (no GPU here: CUDA is not available, and says so without an error)."""
    entry = built_images().get("lab-gpu")
    if (
        entry is None
        or not Path(entry["archive"]).exists()
        or entry["reference"] != Builder().current_references(["lab-gpu"])["lab-gpu"]
    ):
        pytest.skip("lab-gpu is built by `make images-gpu`, not by `make test`")
    script = "import torch; print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version() > 0)"
    torch_version, cuda, cudnn = podman.run(entry["reference"], "python", "-c", script).split()
    assert torch_version.startswith(read_version("torch", "lab-gpu")) and cuda and cudnn == "True"
    assert podman.run(entry["reference"], "sh", "-c", "id -u; cat /proc/1/comm").split() == ["1000", "tini"]


def test_build_reuses_everything_when_nothing_changed(images):
    """`make images` again: every image up to date, nothing built."""
    result = subprocess.run(
        [sys.executable, "-m", "images.build", *TESTED], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for name in TESTED:
        assert f"images: {name:<12}" in result.stdout and "(up to date)" in result.stdout, result.stdout
    assert "building" not in result.stdout
