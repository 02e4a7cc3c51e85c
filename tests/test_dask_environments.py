"""Local clusters in the environment of another kernel: the workers run that kernel's interpreter.

The other environment is a virtual environment made with the `venv` module whose site-packages
adds this one's (a `.pth` file): a distinct interpreter path with the same packages. A bare virtual
environment has none (no distributed). Both are kernelspecs in the data directory of a real
`jupyter server`, which offers them, starts workers of them, and refuses the bare one.
"""

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import distributed
import psutil
import pytest
from playwright.sync_api import expect

from sciencelab.dask.backends.local import LocalBackend, make_worker_spec
from sciencelab.dask.clusters import ClusterRecord
from sciencelab.dask.interpreters import locate_interpreter
from sciencelab.dask.templates import Interpreter, make_templates
from sciencelab_spawner.demo import free_port

from .conftest import LAB_TIMEOUT_MS
from .dask_clusters import create_cluster, run_connect_code, wait_for_workers
from .lab_server import LabServer

TEMPLATES = {
    "local": {
        "backend": "local",
        "options": {
            "workers": {"default": 1, "minimum": 0, "maximum": 3},
            "memory": {"default": 0.5, "minimum": 0.25, "maximum": 1},
        },
    }
}
# Seconds for the processes of a closed or reaped worker to exit.
EXIT_TIMEOUT = 30
WORKERS_TIMEOUT_MS = 120_000


def make_virtual_environment(path: Path, share_packages: bool) -> Path:
    """A virtual environment at `path` (no pip: quick); with `share_packages`, this environment's
    site-packages (and its `.pth` files) are added to its own. Returns its interpreter."""
    venv.EnvBuilder(symlinks=True, with_pip=False).create(path)
    python = path / "bin" / "python"
    if share_packages:
        own = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        Path(own, "sciencelab-tests.pth").write_text(
            f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n"
        )
    return python


def write_kernelspec(data_dir: Path, name: str, python: Path, display_name: str):
    """An IPython kernelspec `name` run by `python`, where the server finds kernels (`<data dir>/kernels`)."""
    folder = data_dir / "kernels" / name
    folder.mkdir(parents=True)
    (folder / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": display_name,
                "language": "python",
            }
        )
    )


@pytest.fixture(scope="module")
def other_python(tmp_path_factory) -> Path:
    """The interpreter of a virtual environment with this environment's packages, at its own path."""
    return make_virtual_environment(tmp_path_factory.mktemp("envs") / "other", share_packages=True)


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """The interpreter of a virtual environment without any package (no distributed, no ipykernel)."""
    return make_virtual_environment(tmp_path_factory.mktemp("envs") / "bare", share_packages=False)


@pytest.fixture
def lab_server(tmp_path, other_python, bare_python):
    """A real `jupyter server` on 127.0.0.1 with a `local` template and, next to the `python3` kernel
    of this environment, kernelspecs `py-other` (`other_python`) and `py-bare` (`bare_python`) in its
    data directory; stopped after the test."""
    server = LabServer(
        tmp_path / "server", app="server", config={"ClusterManager": {"templates": TEMPLATES, "refresh_interval": 0.5}}
    )
    write_kernelspec(server.data_dir, "py-other", other_python, "Python (other)")
    write_kernelspec(server.data_dir, "py-bare", bare_python, "Python (bare)")
    server.start()
    yield server
    server.stop()


def interpreter_worker_processes(server: LabServer) -> list[psutil.Process]:
    """The workers of other interpreters below the server: its `dask spec` children (one per worker)."""
    found = []
    for process in psutil.Process(server.process.pid).children():
        try:
            if "distributed.cli.dask_spec" in process.cmdline():
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def with_descendants(processes: list[psutil.Process]) -> list[psutil.Process]:
    """`processes` and theirs: a nanny's worker process and multiprocessing's resource tracker."""
    return [*processes, *(child for process in processes for child in process.children(recursive=True))]


def wait_for_exit(processes: list[psutil.Process]):
    _, alive = psutil.wait_procs(processes, timeout=EXIT_TIMEOUT)
    assert alive == [], f"worker processes left running: {alive}"


def test_an_interpreter_is_located_with_the_environment_it_runs(other_python):
    venv_dir = os.path.realpath(other_python.parent.parent)
    assert locate_interpreter(str(other_python)) == Interpreter(path=str(other_python), environment=venv_dir)
    assert locate_interpreter(sys.executable) == Interpreter(
        path=sys.executable, environment=os.path.realpath(sys.prefix)
    )
    # The venv's executable links to its base interpreter, which runs other packages.
    base = locate_interpreter(os.path.realpath(other_python))
    assert base.environment not in (venv_dir, os.path.realpath(sys.prefix))
    assert locate_interpreter(str(other_python.parent / "python-missing")) is None


def test_the_kernels_interpreters_are_offered(lab_server):
    [local] = lab_server.request("GET", "sciencelab/api/dask/templates").json()
    # The server's own first (the default: the fast path), then the others by name.
    assert local["environments"] == [
        {"name": "python3", "title": "Python 3 (ipykernel)", "kernels": ["python3"]},
        {"name": "py-bare", "title": "Python (bare)", "kernels": ["py-bare"]},
        {"name": "py-other", "title": "Python (other)", "kernels": ["py-other"]},
    ]
    assert local["default_environment"] == "python3"
    assert local["schema"]["properties"]["environment"]["oneOf"] == [
        {"const": "python3", "title": "Python 3 (ipykernel)"},
        {"const": "py-bare", "title": "Python (bare)"},
        {"const": "py-other", "title": "Python (other)"},
    ]


def test_workers_run_the_interpreter_of_the_kernels_environment(lab_server, other_python):
    cluster = create_cluster(lab_server, "local", workers=2, environment="py-other")
    assert cluster["options"]["environment"] == "py-other"
    cluster = wait_for_workers(lab_server, cluster["id"], 2)
    assert len(interpreter_worker_processes(lab_server)) == 2

    with lab_server.kernel("py-other") as kernel:
        kernel.run(cluster["connect_code"])
        output = kernel.run(
            "import sys\n"
            "print(sys.executable)\n"
            "print(sorted(set(client.run(lambda: sys.executable).values())))\n"
            "print(sum(client.gather(client.map(lambda x: x * x, range(100)))))"
        )
        assert output.splitlines() == [str(other_python), repr([str(other_python)]), "328350"]

        response = lab_server.request("PATCH", f"sciencelab/api/dask/clusters/{cluster['id']}", {"workers": 1})
        assert response.status_code == 200, response.text
        wait_for_workers(lab_server, cluster["id"], 1)
        assert kernel.run(
            "print(len(client.run(lambda: sys.executable)), sum(client.gather(client.map(lambda x: x + 1, range(10)))))"
        ).split() == ["1", "55"]
        kernel.run("client.close()")

    workers = with_descendants(interpreter_worker_processes(lab_server))
    assert lab_server.request("DELETE", f"sciencelab/api/dask/clusters/{cluster['id']}").status_code == 204
    wait_for_exit(workers)
    assert interpreter_worker_processes(lab_server) == []


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "crash"])
def test_restart_leaves_no_worker_of_another_interpreter_behind(lab_server, stop_signal):
    wait_for_workers(lab_server, create_cluster(lab_server, "local", workers=2, environment="py-other")["id"], 2)
    workers = interpreter_worker_processes(lab_server)
    assert len(workers) == 2
    workers = with_descendants(workers)

    lab_server.stop(stop_signal)
    lab_server.start()

    assert lab_server.request("GET", "sciencelab/api/dask/clusters").json() == []
    wait_for_exit(workers)


def test_an_interpreter_without_distributed_is_refused_naming_what_is_missing(lab_server, bare_python):
    response = lab_server.request(
        "POST", "sciencelab/api/dask/clusters", {"template": "local", "options": {"environment": "py-bare"}}
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": f"environment 'py-bare': {bare_python} does not have distributed; the server has "
        f"{distributed.__version__}; install distributed=={distributed.__version__} there or choose "
        "another environment (python3, py-other)",
        "field": "environment",
        "value": "py-bare",
    }
    assert lab_server.request("GET", "sciencelab/api/dask/clusters").json() == []


@pytest.fixture
def scheduler_address():
    """A Dask scheduler process on a free 127.0.0.1 port (no dashboard); its address. Stopped after the test."""
    port = free_port()
    scheduler = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield f"tcp://127.0.0.1:{port}"
    scheduler.terminate()
    scheduler.wait(EXIT_TIMEOUT)


def test_a_recorded_worker_that_outlived_its_server_is_ended(other_python, scheduler_address, tmp_path):
    # What the next start finds after a crash: the record of a worker of another interpreter, still
    # running (its scheduler here is a process of its own, so it does not end by itself). Ending
    # its `dask spec` process ends the nanny's worker process too.
    folder = tmp_path / "clusters" / "c0ffee"
    folder.mkdir(parents=True)
    spec = make_worker_spec(0, 1, 2**28, "127.0.0.1", "tcp://", str(folder), resources=None)
    nanny = psutil.Popen(
        [other_python, "-m", "distributed.cli.dask_spec", scheduler_address, "--spec", json.dumps(spec)],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + EXIT_TIMEOUT
        while not any("spawn_main" in " ".join(child.cmdline()) for child in nanny.children()):
            assert time.monotonic() < deadline, "the nanny did not start its worker process"
            time.sleep(0.2)
        processes = with_descendants([nanny])
        template = make_templates(TEMPLATES, {}, {"local": LocalBackend.settings_schema})["local"]
        backend = LocalBackend(
            template, base_url="/", log=logging.getLogger("test"), clusters_directory=tmp_path / "clusters"
        )
        record = ClusterRecord(
            id="c0ffee",
            owner="me",
            name="local-1",
            template="local",
            backend="local",
            options={},
            created=time.time(),
            server={"pid": 1, "started": 0},
            requested=1,
            backend_state={"worker_processes": [[nanny.pid, nanny.create_time()]]},
        )
        assert asyncio.run(backend.reattach(record)) is None
        wait_for_exit(processes)
        assert not folder.exists(), "the cluster's folder (credentials, spill space) outlived it"
    finally:
        if nanny.poll() is None:
            nanny.kill()
        nanny.wait()


@pytest.fixture
def lab(tmp_path, other_python):
    """A real `jupyter lab` on 127.0.0.1 with the `py-other` kernelspec next to `python3` and a local
    template; stopped after the test."""
    server = LabServer(tmp_path / "lab", config={"ClusterManager": {"templates": TEMPLATES}})
    write_kernelspec(server.data_dir, "py-other", other_python, "Python (other)")
    server.start()
    yield server
    server.stop()


@pytest.mark.browser
def test_the_form_preselects_the_environment_of_the_active_notebook(lab, page):
    page.goto(f"{lab.url}/lab?token={lab.token}")
    launcher = page.locator(".jp-LauncherCard[data-category='Notebook']")
    launcher.filter(has_text="Python (other)").click(timeout=LAB_TIMEOUT_MS)
    expect(page.locator(".jp-NotebookPanel")).to_be_visible(timeout=LAB_TIMEOUT_MS)
    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(timeout=LAB_TIMEOUT_MS)

    page.locator('.jp-SideBar [data-id="sciencelab-panel"]').click()
    section = page.locator(".sciencelab-DaskSection")
    section.get_by_role("button", name="New cluster").click()
    expect(section.locator("select#root_environment option:checked")).to_have_text("Python (other)")
    section.get_by_role("button", name="Create", exact=True).click()
    card = section.locator(".sciencelab-DaskCluster")
    expect(card.locator(".sciencelab-DaskWorkers")).to_have_text("1 of 1 workers connected", timeout=WORKERS_TIMEOUT_MS)

    # The notebook's client and the workers run the same interpreter.
    run_connect_code(page, card)
    page.keyboard.type("import sys; print(set(client.run(lambda: sys.executable).values()) == {sys.executable})")
    page.keyboard.press("Shift+Enter")
    expect(page.locator(".jp-OutputArea-output").filter(has_text="True")).to_have_count(1, timeout=60_000)

    card.get_by_role("button", name="Shut down").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Shut down").click()
    expect(section.locator(".sciencelab-DaskCluster")).to_have_count(0, timeout=60_000)
