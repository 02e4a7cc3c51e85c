"""The demo hub's configuration and command line, without starting it."""

from pathlib import Path

import pytest

from sciencelab_spawner.cli import main
from sciencelab_spawner.demo import DEMO_PROFILES_FILE, DemoSettings, make_demo_banner, make_demo_config
from sciencelab_spawner.profile_config import load_profiles_yaml

SETTINGS = DemoSettings(
    state_dir=Path("/srv/state"),
    port=8000,
    hub_port=8081,
    proxy_api_port=8001,
    service_port=8002,
    proxy_command="/opt/chp",
    user_password="user-password",
    admin_password="a" * 32,
)


def test_demo_config_is_loopback_only_with_state_in_one_place():
    c = make_demo_config(SETTINGS)
    assert (c.JupyterHub.ip, c.JupyterHub.port, c.JupyterHub.hub_ip, c.JupyterHub.hub_port) == (
        "127.0.0.1",
        8000,
        "127.0.0.1",
        8081,
    )
    assert c.JupyterHub.db_url == "sqlite:////srv/state/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == "/srv/state/jupyterhub_cookie_secret"
    assert c.JupyterHub.config_file == "/srv/state/jupyterhub_config.py"
    assert c.ConfigurableHTTPProxy.command == ["/opt/chp"]
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert c.LocalProfileSpawner.home_dir_template == "/srv/state/home/{username}"
    assert c.LocalProfileSpawner.profiles_file == "/srv/state/profiles.yaml"
    (service,) = c.JupyterHub.services
    assert service["url"] == "http://127.0.0.1:8002"
    assert service["environment"]["SCIENCELAB_PROFILES_FILE"] == "/srv/state/profiles.yaml"


def test_demo_banner_says_where_and_how_to_log_in():
    assert make_demo_banner(SETTINGS) == (
        "\nScienceLab demo hub: http://127.0.0.1:8000\n"
        "  users alice, bob: password user-password (alice is in gpu-users)\n"
        f"  admin user admin: password {'a' * 32}\n"
        "  profiles in /srv/state/profiles.yaml (edit it while the hub runs)\n"
        "  state in /srv/state; Ctrl-C stops the hub and every server.\n"
    )


def test_demo_config_users_groups_and_spawner():
    c = make_demo_config(SETTINGS)
    assert c.JupyterHub.authenticator_class == "shared-password"
    assert c.Authenticator.allowed_users == {"alice", "bob"}
    assert c.Authenticator.admin_users == {"admin"}
    assert c.JupyterHub.load_groups == {"gpu-users": {"users": ["alice"]}}
    assert c.JupyterHub.allow_named_servers is True
    assert c.JupyterHub.spawner_class == "sciencelab-local"
    assert c.LocalProfileSpawner.run_as_hub_user is True


def test_demo_profiles_are_valid_and_show_every_option():
    config = load_profiles_yaml(DEMO_PROFILES_FILE.read_text(), "demo_profiles.yaml")
    assert [p.slug for p in config.profiles] == ["cpu", "gpu", "collab"]
    cpu, gpu, collab = config.profiles
    assert (cpu.image.offered, cpu.size.offered, cpu.cvmfs.offered, cpu.s3.offered) == (True, True, True, True)
    assert gpu.allowed_groups == {"gpu-users"} and gpu.gpu_count.offered
    assert collab.collaborative.switch.offered


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--password", "short"], "sciencelab demo: --password: must be at least 8 characters"),
        (
            ["--password", "long-enough", "--admin-password", "short"],
            "sciencelab demo: --admin-password: must be at least 32 characters and differ from --password",
        ),
    ],
)
def test_demo_refuses_weak_passwords(argv, message, monkeypatch):
    monkeypatch.setattr("sciencelab_spawner.demo.shutil.which", lambda name: "/opt/chp")
    with pytest.raises(SystemExit) as exit_:
        main(["demo", *argv])
    assert exit_.value.code == message


def test_demo_says_how_to_get_the_proxy(monkeypatch):
    monkeypatch.setattr("sciencelab_spawner.demo.shutil.which", lambda name: None)
    with pytest.raises(SystemExit) as exit_:
        main(["demo"])
    assert "configurable-http-proxy is not on PATH. Run `make demo`" in exit_.value.code
