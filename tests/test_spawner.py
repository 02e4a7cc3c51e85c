"""LocalProfileSpawner without a hub process: how it applies, refuses and remembers profiles, and
how it reads this machine's GPUs.

The user and the spawner's database row are JupyterHub's real ORM objects in an in-memory SQLite
database, as JupyterHub itself gives them to spawners; NVML is the stub of tests/fake_nvml.
"""

import asyncio
import json
import logging
import os
import sys
import threading
from types import SimpleNamespace

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.spawner import SpawnException

from sciencelab_spawner.local import LocalProfileSpawner
from sciencelab_spawner.local_gpus import GpuDevice, GpuInventory, LocalGpuInventory, read_gpu_inventory
from sciencelab_spawner.profile_spawner import RefusalTracebackFilter

from .fake_gpus import FakeNvml, make_gpu, use_stub_in_this_process

GIB = 1024**3
PROFILES = {
    "images": {
        "python": {"image": "quay.io/jupyter/scipy-notebook:2026-11-02", "display_name": "Python"},
        "root": {"image": "ghcr.io/sciencelab/user-root:2026.11"},
    },
    "sizes": {"small": {"cpu_limit": 1, "mem_limit": "2G"}, "large": {"cpu_limit": 4, "mem_limit": "8G"}},
    "cvmfs_repositories": {"sft.cern.ch": {}, "cms.cern.ch": {}},
    "profiles": [
        {
            "slug": "small",
            "display_name": "Small",
            "default": True,
            "image": "python",
            "size": "small",
            "cvmfs": {"choices": ["sft.cern.ch", "cms.cern.ch"]},
            "environment": {"SITE": "test"},
        },
        {
            "slug": "large",
            "display_name": "Large",
            "image": {"choices": ["python", "root"]},
            "size": "large",
            "allowed_groups": ["big"],
        },
        {"slug": "bare", "display_name": "Bare"},
    ],
}


@pytest.fixture
def db():
    """An in-memory JupyterHub database."""
    session = orm.new_session_factory("sqlite://")()
    yield session
    session.close()


def make_spawner(db, groups=(), remembered=None, name="alice", **config) -> LocalProfileSpawner:
    """alice's (or `name`'s) default server, with her last accepted options `remembered` in the database."""
    orm_user = orm.User(name=name)
    db.add(orm_user)
    for name in groups:
        orm_user.groups.append(orm.Group(name=name))
    orm_spawner = orm.Spawner(user=orm_user, name="", user_options=remembered)
    db.add(orm_spawner)
    db.commit()
    user = SimpleNamespace(name=name, url=f"/user/{name}/", groups=orm_user.groups, spawners={})
    config.setdefault("profiles", PROFILES)
    spawner = LocalProfileSpawner(
        user=user, orm_spawner=orm_spawner, user_options=orm_spawner.user_options or {}, **config
    )
    user.spawners[""] = spawner
    return spawner


async def prepare_spawn(spawner: LocalProfileSpawner, user_options: dict | None):
    """What JupyterHub 6 does with user_options before `start()` (user.spawn)."""
    if user_options is None:
        user_options = spawner.orm_spawner.user_options or {}
    else:
        spawner.orm_spawner.user_options = user_options
    spawner.user_options = user_options
    spawner.clear_state()
    spawner.apply_user_options(spawner, user_options)
    await spawner.run_pre_spawn_hook()


def record(spawner) -> dict:
    return json.loads(spawner.environment["SCIENCELAB_PROFILE"])


async def test_chosen_profile_sets_limits_environment_and_record(db):
    spawner = make_spawner(db, groups=["big"], environment={"KEEP": "1"})
    await prepare_spawn(spawner, {"profile": "large", "image": "root"})
    assert (spawner.cpu_limit, spawner.mem_limit) == (4.0, 8 * GIB)
    assert {k: v for k, v in spawner.environment.items() if k != "SCIENCELAB_PROFILE"} == {
        "KEEP": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "JUPYTER_IMAGE": "ghcr.io/sciencelab/user-root:2026.11",
        "JUPYTER_IMAGE_SPEC": "ghcr.io/sciencelab/user-root:2026.11",
    }
    assert record(spawner)["slug"] == "large"
    assert record(spawner)["image"] == {
        "name": "root",
        "display_name": "root",
        "image": "ghcr.io/sciencelab/user-root:2026.11",
    }
    # Local processes have no container: the record says what the panel must not claim.
    assert record(spawner)["not_applied"] == {
        "settings": ["image", "size", "cvmfs", "s3"],
        "marker": "only on Kubernetes",
        "reason": "This hub runs each server as a local process, without a container: the image, CVMFS "
        "repositories and S3 buckets apply only on Kubernetes, and CPU and memory limits are not enforced.",
    }
    # A profile without collaboration: jupyter-collaboration's server extension stays off.
    assert spawner.args == ["--ServerApp.jpserver_extensions=jupyter_server_ydoc=False"]


async def test_profile_without_size_keeps_the_admins_limits_and_group_overrides(db):
    spawner = make_spawner(db, mem_limit="1G", cpu_limit=0.5)
    await prepare_spawn(spawner, {"profile": "bare"})
    assert (spawner.cpu_limit, spawner.mem_limit) == (0.5, GIB)
    # A group override is applied by JupyterHub after clear_state and before the pre-spawn hook.
    spawner.clear_state()
    spawner.mem_limit = 3 * GIB
    spawner.user_options = {"profile": "bare"}
    await spawner.run_pre_spawn_hook()
    assert spawner.mem_limit == 3 * GIB


async def test_the_end_of_a_spawn_restores_only_what_its_profile_changed(db):
    spawner = make_spawner(db, mem_limit="1G", cpu_limit=0.5)
    # Set after the spawner was made: by a subclass, an auth_state_hook, a hook of the admin's.
    spawner.mem_limit = 3 * GIB
    await prepare_spawn(spawner, {"profile": "small"})
    assert (spawner.cpu_limit, spawner.mem_limit) == (1, 2 * GIB)
    spawner.cpu_limit = 0.25  # the admin's pre_spawn_hook, after the profile
    spawner.clear_state()  # the server stopped
    assert (spawner.cpu_limit, spawner.mem_limit) == (0.5, 3 * GIB)
    assert "SITE" not in spawner.environment
    await prepare_spawn(spawner, {"profile": "bare"})
    assert (spawner.cpu_limit, spawner.mem_limit) == (0.5, 3 * GIB)


async def test_one_spawns_profile_never_leaks_into_the_next(db):
    spawner = make_spawner(db, groups=["big"], mem_limit="1G")
    await prepare_spawn(spawner, {"profile": "small"})
    assert spawner.environment["SITE"] == "test" and spawner.mem_limit == 2 * GIB
    await prepare_spawn(spawner, {"profile": "bare"})
    assert "SITE" not in spawner.environment and "JUPYTER_IMAGE" not in spawner.environment
    assert spawner.mem_limit == GIB


async def test_no_options_mean_the_default_profile(db):
    spawner = make_spawner(db)
    await prepare_spawn(spawner, {})
    assert record(spawner)["slug"] == "small"
    assert record(spawner)["cvmfs"] == []


async def test_refusal_is_a_4xx_naming_the_choices(db):
    spawner = make_spawner(db)
    with pytest.raises(SpawnException) as error:
        await prepare_spawn(spawner, {"profile": "no-such"})
    assert error.value.status_code == 400
    assert error.value.message == "profile: 'no-such' is not allowed; choose one of: small, bare"
    with pytest.raises(SpawnException) as error:
        await prepare_spawn(spawner, {"profile": "large"})
    assert error.value.status_code == 403
    assert error.value.message == "profile: 'large' is only for members of big; choose one of: small, bare"


async def test_a_kubernetes_profile_on_the_local_hub_is_a_503_unless_the_hub_starts_pods(db):
    profiles = [{"slug": "pod", "display_name": "A pod", "runs_on": "kubernetes"}]
    spawner = make_spawner(db, profiles=profiles)
    with pytest.raises(SpawnException) as error:
        await prepare_spawn(spawner, {"profile": "pod"})
    assert (error.value.status_code, error.value.message) == (
        503,
        "Profile 'pod' runs on kubernetes, which this hub's local spawner cannot start (it starts: local, slurm); "
        "tell your hub admin",
    )
    spawner = make_spawner(db, name="bob", profiles=profiles, kubernetes_profiles=True)
    await prepare_spawn(spawner, {"profile": "pod"})
    assert spawner.runs_on_kinds == {"local", "slurm", "kubernetes"}
    assert spawner.sciencelab_profile.runs_on == "kubernetes"


async def test_refused_options_never_become_the_last_options(db):
    spawner = make_spawner(db)
    await prepare_spawn(spawner, {"profile": "small", "cvmfs": ["cms.cern.ch"]})
    with pytest.raises(SpawnException):
        await prepare_spawn(spawner, {"profile": None})
    assert spawner.orm_spawner.user_options == {"profile": "small", "cvmfs": ["cms.cern.ch"]}
    # The next spawn without options (the admin page's Start button) gets the last good ones.
    await prepare_spawn(spawner, None)
    assert record(spawner)["cvmfs"] == [
        {"name": "cms.cern.ch", "display_name": "cms.cern.ch", "path": "/cvmfs/cms.cern.ch"}
    ]


async def test_remembered_options_no_longer_valid_fall_back_with_a_notice(db):
    # alice used `large` while she was in group `big`; she no longer is.
    spawner = make_spawner(db, remembered={"profile": "large", "image": "root"})
    await prepare_spawn(spawner, None)
    assert record(spawner)["slug"] == "small"
    assert record(spawner)["notices"] == [
        "Your last choice of profile ('large') is no longer offered; using the default instead."
    ]
    assert spawner.orm_spawner.user_options == {}


async def test_notices_are_shown_while_the_server_starts(db):
    spawner = make_spawner(db, remembered={"profile": "large"})
    await prepare_spawn(spawner, None)
    events = [event async for event in spawner.progress()]
    assert events[0] == {
        "message": "Your last choice of profile ('large') is no longer offered; using the default instead."
    }


async def test_explicitly_sent_invalid_options_are_refused_even_when_something_is_remembered(db):
    spawner = make_spawner(db, remembered={"profile": "small"})
    with pytest.raises(SpawnException):
        await prepare_spawn(spawner, {"profile": "small", "image": "root"})


async def test_admin_pre_spawn_hook_still_runs_after_the_profile(db):
    seen = []
    spawner = make_spawner(db, pre_spawn_hook=lambda s: seen.append(record(s)["slug"]))
    await prepare_spawn(spawner, {"profile": "bare"})
    assert seen == ["bare"]


def test_bad_profile_config_fails_when_loaded():
    with pytest.raises(ValueError, match=r"profile 'x' \(profiles\[0\]\): missing required field 'display_name'"):
        LocalProfileSpawner(user=SimpleNamespace(name="alice"), profiles=[{"slug": "x"}])


def test_profiles_file_is_reread_when_it_changes_and_a_broken_edit_keeps_the_last_good(db, tmp_path, caplog):
    path = tmp_path / "profiles.yaml"
    path.write_text("profiles: [{slug: one, display_name: One}]")
    spawner = make_spawner(db, profiles_file=str(path))
    assert [p.slug for p in spawner.profile_config.profiles] == ["one"]
    path.write_text("profiles: [{slug: one, display_name: One}, {slug: two, display_name: Two}]")
    assert [p.slug for p in spawner.profile_config.profiles] == ["one", "two"]
    path.write_text("profiles: [{slug: Three, display_name: Three}]")
    assert [p.slug for p in spawner.profile_config.profiles] == ["one", "two"]
    assert "ScienceLab profiles NOT reloaded, keeping the last good ones" in caplog.text
    assert "profile 'Three' (profiles[0]), slug" in caplog.text


async def test_form_offers_what_the_groups_allow_and_reads_back_multiple_values(db):
    spawner = make_spawner(db)
    form = await spawner.options_form(spawner)
    assert 'value="small" checked="checked"' in form and 'value="bare"' in form
    assert 'value="large"' not in form
    options = spawner.run_options_from_form({"profile": ["small"], "small.cvmfs": ["sft.cern.ch", "cms.cern.ch"]})
    assert options == {"profile": "small", "cvmfs": ["sft.cern.ch", "cms.cern.ch"]}
    assert spawner.options_from_query({"profile": ["bare"]}) == {"profile": "bare"}


def test_form_and_query_fields_that_are_not_the_forms_are_a_400(db):
    spawner = make_spawner(db)
    for read in (spawner.run_options_from_form, spawner.options_from_query):
        with pytest.raises(SpawnException) as refused:
            read({"profile": ["small"], "mem_limit": ["64G"]})
        assert (refused.value.status_code, refused.value.reason) == (400, "mem_limit")
        assert refused.value.message == (
            "mem_limit: ['64G'] is not a field of the spawn form; the form sends profile and <profile>.<option> fields"
        )


def get_json_body(body: bytes):
    """Named as JupyterHub's APIHandler method that reads a request's JSON body."""
    return json.loads(body)


def refuse_size(size: str):
    raise SpawnException(f"size: {size!r} is not allowed", reason="size")


@pytest.mark.parametrize(
    "raised",
    [
        lambda: get_json_body(b"{"),
        lambda: get_json_body(b"9" * 5000),
        lambda: get_json_body(b"[" * 100_000),
        lambda: refuse_size("huge"),
    ],
)
def test_refusals_log_no_traceback(raised):
    try:
        raised()
    except (ValueError, RecursionError, SpawnException):
        record = logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1, "refused", (), sys.exc_info())
    assert RefusalTracebackFilter().filter(record) and record.exc_info is None


def test_failures_keep_their_traceback():
    try:
        json.loads(b"{")  # not while reading a request: a bug, whose traceback is wanted
    except ValueError:
        record = logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert RefusalTracebackFilter().filter(record) and record.exc_info is not None


def test_run_as_hub_user_uses_own_home_and_args_do_not_pile_up(db, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the preexec function changes directory; restore it afterwards
    spawner = make_spawner(db, run_as_hub_user=True, home_dir_template=str(tmp_path / "{username}"))
    assert spawner.user_env({}) == {
        "USER": "alice",
        "HOME": str(tmp_path / "alice"),
        "DASK_TEMPORARY_DIRECTORY": str(tmp_path / "alice" / ".dask-tmp"),
    }
    spawner.make_preexec_fn("alice")()
    assert os.getcwd() == str(tmp_path / "alice")
    assert (tmp_path / "alice" / ".dask-tmp").is_dir()
    expected = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
    assert spawner.get_args()[-len(expected) or len(spawner.get_args()) :] == expected
    assert spawner.get_args() == spawner.get_args()
    assert spawner.args == []


def test_each_server_has_its_own_dask_directory_and_the_admin_may_choose_another(db, tmp_path):
    spawner = make_spawner(db, run_as_hub_user=True, home_dir_template=str(tmp_path / "{username}"))
    spawner.orm_spawner.name = "second"  # a named server
    assert spawner.user_env({})["DASK_TEMPORARY_DIRECTORY"] == str(tmp_path / "alice" / ".dask-tmp-second")
    assert spawner.user_env({"DASK_TEMPORARY_DIRECTORY": "/scratch"})["DASK_TEMPORARY_DIRECTORY"] == "/scratch"


async def test_profile_dask_templates_reach_the_servers_cluster_manager(db, tmp_path):
    # The two sides share no code: the spawner names the file, the Dask manager reads it.
    from sciencelab.dask.manager import ClusterManager

    dask_file = tmp_path / "cms-dask.yaml"
    dask_file.write_text("sciencelab:\n  clusters:\n    templates:\n      cms: {backend: local, title: CMS}\n")
    profiles = {**PROFILES, "profiles": [{"slug": "cms", "display_name": "CMS", "dask_config": str(dask_file)}]}
    spawner = make_spawner(db)
    spawner.profiles = profiles
    await prepare_spawn(spawner, {})
    manager = ClusterManager(config_paths=[], environ=spawner.environment)
    assert manager.cluster_templates["cms"].title == "CMS"


# --- this machine's GPUs ---------------------------------------------------------------------------

MIG_NAME = "NVIDIA A100-SXM4-80GB MIG 1g.10gb"
GPU_PROFILES = {
    "gpu_models": {"a100": {"display_name": "A100", "node_label": "NVIDIA-A100-SXM4-80GB"}},
    "profiles": [
        {"slug": "cpu", "display_name": "CPU", "default": True},
        {"slug": "a100", "display_name": "A100", "gpu": {"model": "a100", "count": 1}},
    ],
}


@pytest.fixture
def nvml(tmp_path, monkeypatch) -> FakeNvml:
    """The `pynvml` stub in this process, with one A100; `nvml.module` is the stub."""
    fake = FakeNvml(tmp_path / "nvml.json")
    fake.set([make_gpu(0)])
    fake.module = use_stub_in_this_process(monkeypatch, fake)
    return fake


def test_the_inventory_has_whole_gpus_and_mig_slices_and_leaves_nvml_shut_down(nvml):
    slices = [
        {"uuid": "MIG-a", "name": MIG_NAME, "memory": [0, 10]},
        {"uuid": "MIG-b", "name": MIG_NAME, "memory": [0, 10]},
    ]
    nvml.set([make_gpu(0), make_gpu(1, mig=slices)])
    assert read_gpu_inventory() == GpuInventory(
        (
            GpuDevice("GPU-00000000-fake", "NVIDIA A100-SXM4-80GB"),
            GpuDevice("MIG-a", "NVIDIA A100-SXM4-80GB", "1g.10gb"),
            GpuDevice("MIG-b", "NVIDIA A100-SXM4-80GB", "1g.10gb"),
        )
    )
    with pytest.raises(nvml.module.NVMLError_Uninitialized):
        nvml.module.nvmlDeviceGetCount()


def test_without_a_driver_the_inventory_says_why(nvml):
    nvml.set([], library_missing=True)
    assert read_gpu_inventory() == GpuInventory(problem="NVML: NVML Shared Library Not Found")


async def test_nvml_is_read_on_a_worker_thread_once_for_all_who_ask_and_reused_briefly():
    readers = []

    def read() -> GpuInventory:
        readers.append(threading.get_ident())
        return GpuInventory((GpuDevice(f"GPU-{len(readers)}", "NVIDIA A100-SXM4-80GB"),))

    inventory = LocalGpuInventory(read, max_age=60)
    answers = await asyncio.gather(*(inventory.current() for _ in range(5)))
    assert readers and threading.get_ident() not in readers
    assert len(readers) == 1 and all(answer.devices[0].uuid == "GPU-1" for answer in answers)
    assert (await inventory.current()) is inventory.latest is answers[0]
    assert len(readers) == 1

    inventory.max_age = 0
    assert (await inventory.current()).devices[0].uuid == "GPU-2"


async def test_a_gpu_one_user_holds_is_not_given_to_another_user_of_the_hub(db, nvml):
    hub = Hub()
    alice = make_spawner(db, profiles=GPU_PROFILES, hub=hub)
    bob = make_spawner(db, profiles=GPU_PROFILES, hub=hub, name="bob")
    assert "1 of 1 A100 free" in await bob.options_form(bob)

    await prepare_spawn(alice, {"profile": "a100"})
    assert alice.environment["CUDA_VISIBLE_DEVICES"] == "GPU-00000000-fake"
    assert "0 of 1 A100 free" in await bob.options_form(bob)
    with pytest.raises(SpawnException) as refused:
        await prepare_spawn(bob, {"profile": "a100"})
    assert (refused.value.status_code, refused.value.message) == (
        409,
        "gpu_count: 1 is more than is free; 0 of 1 A100 free on this machine; "
        "ask for at most 0 or try again when a GPU is released",
    )

    alice.clear_state()  # her server stopped
    await prepare_spawn(bob, {"profile": "a100"})
    assert bob.environment["CUDA_VISIBLE_DEVICES"] == "GPU-00000000-fake"
