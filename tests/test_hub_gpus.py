"""GPUs, quotas and hot reload on a real hub whose machine has four stubbed GPUs.

NVML is stubbed at the `pynvml` module boundary only (tests/fake_nvml); the hub, its service, the
spawner's allocation and JupyterLab are real.
"""

import json
import os
import textwrap
import threading
import time

import pytest

from .demo_hub import DemoHub
from .fake_gpus import FakeNvml, make_gpu

pytestmark = pytest.mark.hub

PROFILES = textwrap.dedent("""
    gpu_models:
      a100: {display_name: A100, node_label: NVIDIA-A100-SXM4-80GB}
      slice: {display_name: A100 slice 1g.10gb, resource: nvidia.com/mig-1g.10gb}
    quotas:
      max_gpus_per_user: 2
      groups:
        gpu-users: {max_gpus_per_user: 3}
    profiles:
      - {slug: cpu, display_name: CPU, default: true}
      - slug: a100
        display_name: A100
        gpu: {model: a100, count: {min: 1, max: 3}}
      - slug: slice
        display_name: MIG slice
        gpu: {model: slice, count: 1}
""")
MIG_NAME = "NVIDIA A100-SXM4-80GB MIG 1g.10gb"


@pytest.fixture(scope="module")
def gpu_hub(tmp_path_factory):
    """A demo hub on a machine with three whole A100s and one A100 in MIG mode with two slices; the
    last test fails if the hub logged a traceback."""
    state = tmp_path_factory.mktemp("gpu-hub")
    nvml = FakeNvml(state / "nvml.json")
    nvml.set(
        [
            make_gpu(0),
            make_gpu(1),
            make_gpu(2),
            make_gpu(
                3,
                mig=[
                    {"uuid": "MIG-a", "name": MIG_NAME, "memory": [0, 10]},
                    {"uuid": "MIG-b", "name": MIG_NAME, "memory": [0, 10]},
                ],
            ),
        ]
    )
    # The service only keeps the environment JupyterHub gives it: re-declare it with the stub's.
    extra_config = textwrap.dedent(f"""
        import os
        from sciencelab_spawner.demo import free_port
        from sciencelab_spawner.hub_config import configure_sciencelab
        configure_sciencelab(c, profiles_file=os.path.join(os.path.dirname(__file__), "profiles.yaml"),
                             service_port=free_port())
        c.JupyterHub.services[0]["environment"]["FAKE_PYNVML_STATE"] = {str(nvml.path)!r}
    """)
    hub = DemoHub(state, extra_config=extra_config, profiles=PROFILES, env=nvml.environ).start()
    try:
        yield hub
        hub.check_log()
    finally:
        hub.stop()


@pytest.fixture
def servers(gpu_hub):
    """(user, server) pairs a test starts; all stopped afterwards."""
    started = []
    yield started
    for user, server in started:
        gpu_hub.stop_server(user, server)


def devices(hub, user: str, server: str = "") -> list[str]:
    path = f"/user/{user}/{server}/sciencelab/api/info" if server else f"/user/{user}/sciencelab/api/info"
    return hub.request("GET", path, user).json()["profile"]["gpu"]["devices"]


def spawn(hub, servers, user, options, server=""):
    servers.append((user, server))
    return hub.spawn(user, options, server=server)


def test_gpus_go_to_one_server_each_and_quotas_count_named_servers(gpu_hub, servers):
    assert spawn(gpu_hub, servers, "alice", {"profile": "a100", "gpu_count": 2}, "train").status_code in (201, 202)
    first = devices(gpu_hub, "alice", "train")
    assert len(first) == 2 and all(d.startswith("GPU-") for d in first)

    refused = spawn(gpu_hub, servers, "alice", {"profile": "a100", "gpu_count": 2}, "more")
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        "gpu_count: 2 would exceed your GPU quota; you may hold at most 3 GPUs and hold 2 (servers: 'train'); "
        "ask for at most 1 or stop a server first"
    )

    assert spawn(gpu_hub, servers, "alice", {"profile": "a100", "gpu_count": 1}, "more").status_code in (201, 202)
    second = devices(gpu_hub, "alice", "more")
    assert len(second) == 1 and second[0] not in first

    # Three of three whole GPUs are taken: bob is told how many are free, and the MIG slices are
    # a different model.
    full = spawn(gpu_hub, servers, "bob", {"profile": "a100", "gpu_count": 1})
    assert full.status_code == 409
    assert full.json()["message"] == (
        "gpu_count: 1 is more than is free; 0 of 3 A100 free on this machine; "
        "ask for at most 0 or try again when a GPU is released"
    )
    profiles = gpu_hub.request("GET", "/services/sciencelab/api/profiles", "bob").json()
    assert {p["slug"]: p["gpu_availability"] for p in profiles["profiles"]} == {
        "cpu": {},
        "a100": {"a100": {"free": 0, "total": 3}},
        "slice": {"slice": {"free": 2, "total": 2}},
    }
    assert gpu_hub.request("GET", "/services/sciencelab/api/profiles", "alice").json()["gpu_quota"] == {
        "max_gpus": 3,
        "held": 3,
    }

    assert spawn(gpu_hub, servers, "bob", {"profile": "slice"}).status_code in (201, 202)
    assert devices(gpu_hub, "bob") == ["MIG-a"]

    # Released GPUs are free again.
    gpu_hub.stop_server("alice", "train")
    assert spawn(gpu_hub, servers, "bob", {"profile": "a100", "gpu_count": 1}, "second").status_code in (201, 202)
    assert devices(gpu_hub, "bob", "second")[0] in first


def test_two_users_racing_for_the_last_gpu_get_one_server_and_one_refusal(gpu_hub, servers):
    assert spawn(gpu_hub, servers, "alice", {"profile": "a100", "gpu_count": 2}, "hold").status_code in (201, 202)
    answers = {}
    ready = threading.Barrier(2)

    def race(user, server):
        ready.wait()
        servers.append((user, server))
        answers[user] = gpu_hub.request(
            "POST", f"/hub/api/users/{user}/servers/{server}", user, json={"profile": "a100", "gpu_count": 1}
        )

    racers = [threading.Thread(target=race, args=("alice", "race")), threading.Thread(target=race, args=("bob", ""))]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    statuses = sorted(response.status_code for response in answers.values())
    assert statuses[1] == 409 and statuses[0] in (201, 202), {u: r.text for u, r in answers.items()}
    winner = next(user for user, response in answers.items() if response.status_code != 409)
    gpu_hub.wait_until_ready(winner, "race" if winner == "alice" else "")
    assert "0 of 3 A100 free" in next(r for r in answers.values() if r.status_code == 409).json()["message"]


def test_form_shows_gpu_availability(gpu_hub, servers):
    session = gpu_hub.browser_session("bob")
    assert "3 of 3 A100 free" in gpu_hub.spawn_form(session, "bob")
    assert "2 of 2 A100 slice 1g.10gb free" in gpu_hub.spawn_form(session, "bob")


def test_profile_file_edits_apply_without_restart_and_broken_edits_keep_the_last_good(gpu_hub, servers):
    original = gpu_hub.profiles_path.read_text()
    session = gpu_hub.browser_session("alice")
    try:
        edited = original + "  - {slug: fresh, display_name: Fresh profile}\n"
        write_later(gpu_hub.profiles_path, edited)
        assert "Fresh profile" in gpu_hub.spawn_form(session, "alice")
        assert "fresh" in [
            p["slug"] for p in gpu_hub.request("GET", "/services/sciencelab/api/profiles", "alice").json()["profiles"]
        ]
        assert spawn(gpu_hub, servers, "alice", {"profile": "fresh"}, "fresh").status_code in (201, 202)

        write_later(gpu_hub.profiles_path, original + "  - {slug: Broken Slug, display_name: Nope}\n")
        form = gpu_hub.spawn_form(session, "alice")
        assert "Fresh profile" in form and "Nope" not in form
        assert "ScienceLab profiles NOT reloaded, keeping the last good ones" in gpu_hub.log_text()
        assert "profile 'Broken Slug' (profiles[3]), slug" in gpu_hub.log_text()
        refused = gpu_hub.spawn("alice", {"profile": "Broken Slug"}, server="nope")
        assert refused.status_code == 400
    finally:
        write_later(gpu_hub.profiles_path, original)


def write_later(path, text: str):
    """Replace a file so that its modification time surely changes, as an editor's save does."""
    time.sleep(0.01)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_record_reaches_the_server(gpu_hub, servers):
    assert spawn(gpu_hub, servers, "bob", {"profile": "slice"}, "record").status_code in (201, 202)
    info = gpu_hub.request("GET", "/user/bob/record/sciencelab/api/info", "bob").json()
    assert info["profile"]["gpu"] == {
        "model": "slice",
        "display_name": "A100 slice 1g.10gb",
        "count": 1,
        "resource": "nvidia.com/mig-1g.10gb",
        "devices": [info["profile"]["gpu"]["devices"][0]],
    }
    assert json.dumps(info["profile"]).count("MIG-") == 1
