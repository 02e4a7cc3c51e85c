"""LocalProfileSpawner without a hub: how it applies and refuses profiles."""

import os
from types import SimpleNamespace

import pytest
from jupyterhub.spawner import SpawnException

from sciencelab_spawner.local import LocalProfileSpawner

PROFILES = [
    {"slug": "small", "display_name": "Small", "cpu_limit": 1, "mem_limit": "2G", "default": True},
    {"slug": "large", "display_name": "Large", "cpu_limit": 4, "mem_limit": "8G"},
]


def make_spawner(**config) -> LocalProfileSpawner:
    return LocalProfileSpawner(user=SimpleNamespace(name="alice", url="/user/alice/"), profiles=PROFILES, **config)


def prepare_spawn(spawner: LocalProfileSpawner, user_options: dict):
    """What JupyterHub does with user_options before `start()`."""
    spawner.user_options = user_options
    spawner.apply_user_options(spawner, user_options)
    spawner.run_pre_spawn_hook()


def test_chosen_profile_sets_limits_and_environment():
    spawner = make_spawner(environment={"KEEP": "1"})
    prepare_spawn(spawner, {"profile": "large"})
    assert (spawner.cpu_limit, spawner.mem_limit) == (4.0, 8 * 1024**3)
    assert spawner.environment == {
        "KEEP": "1",
        "SCIENCELAB_PROFILE": "large",
        "SCIENCELAB_PROFILE_DISPLAY_NAME": "Large",
    }


def test_no_profile_means_default():
    spawner = make_spawner()
    prepare_spawn(spawner, {})
    assert spawner.environment["SCIENCELAB_PROFILE"] == "small"


def test_unknown_profile_is_a_400_naming_the_choices():
    spawner = make_spawner()
    with pytest.raises(SpawnException) as error:
        prepare_spawn(spawner, {"profile": "no-such"})
    assert error.value.status_code == 400
    assert error.value.message == "profile: 'no-such' is not allowed; choose one of: small, large"


def test_admin_pre_spawn_hook_still_runs_after_the_profile():
    seen = []
    spawner = make_spawner(pre_spawn_hook=lambda spawner: seen.append(spawner.environment["SCIENCELAB_PROFILE"]))
    prepare_spawn(spawner, {"profile": "large"})
    assert seen == ["large"]


def test_bad_profile_config_fails_when_loaded():
    with pytest.raises(ValueError, match=r"profiles\[0\]: missing required field 'display_name'"):
        LocalProfileSpawner(user=SimpleNamespace(name="alice"), profiles=[{"slug": "x"}])


def test_form_offers_the_profiles():
    form = make_spawner().options_form
    assert 'value="small" checked="checked"' in form and 'value="large"' in form


def test_run_as_hub_user_uses_own_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the preexec function changes directory; restore it afterwards
    spawner = make_spawner(run_as_hub_user=True, home_dir_template=str(tmp_path / "{username}"))
    assert spawner.user_env({}) == {"USER": "alice", "HOME": str(tmp_path / "alice")}
    spawner.make_preexec_fn("alice")()
    assert os.getcwd() == str(tmp_path / "alice")
    allow_root = "--ServerApp.allow_root=True" in spawner.get_args()
    assert allow_root == (os.geteuid() == 0)
