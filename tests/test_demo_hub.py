"""The real demo hub, end to end over HTTP: spawns through the REST API and the form, refusals,
the sciencelab service, and JupyterLab reached through the proxy."""

import pytest

from .demo_hub import DemoHub

pytestmark = pytest.mark.hub

ALICE_CHOICES = {"profile": "cpu", "image": "root", "size": "medium", "cvmfs": ["cms.cern.ch"], "s3": ["cms-opendata"]}


def refusal_lines(hub, message: str) -> list[str]:
    return [line for line in hub.log_text().splitlines() if message in line]


def test_spawn_with_options_reaches_lab_and_shows_the_profile(demo_hub, alice):
    response = demo_hub.spawn(alice, ALICE_CHOICES)
    assert response.status_code in (201, 202), response.text

    info = demo_hub.request("GET", "/user/alice/sciencelab/api/info", alice)
    assert info.status_code == 200, info.text
    profile = info.json()["profile"]
    assert (profile["slug"], profile["image"]["name"]) == ("cpu", "root")
    assert profile["resources"] == {
        "cpu_guarantee": 1.0,
        "cpu_limit": 2.0,
        "mem_guarantee": 2 * 1024**3,
        "mem_limit": 4 * 1024**3,
    }
    assert [r["path"] for r in profile["cvmfs"]] == ["/cvmfs/cms.cern.ch"]
    assert [b["bucket"] for b in profile["s3"]] == ["cms-opendata"]
    # jupyter-resource-usage shows memory against the profile's limit.
    metrics = demo_hub.request("GET", "/user/alice/api/metrics/v1", alice).json()
    assert metrics["limits"]["memory"]["rss"] == 4 * 1024**3

    lab = demo_hub.request("GET", "/user/alice/lab", alice)
    assert lab.status_code == 200 and "@sciencelab/labextension" in lab.text


def test_refused_options_are_400_and_never_become_the_last_options(demo_hub, alice):
    refused = demo_hub.spawn(alice, {"profile": None})
    assert refused.status_code == 400
    assert refused.json()["message"] == "profile: None is not allowed; choose one of: cpu, gpu, collab"
    lines = refusal_lines(demo_hub, "profile: None is not allowed")
    assert lines and not any("Traceback" in line for line in lines)

    # The admin page's Start button: a POST without a body reuses the last *accepted* options.
    started = demo_hub.spawn(alice, None, as_user="admin")
    assert started.status_code in (201, 202), started.text
    assert demo_hub.request("GET", "/user/alice/sciencelab/api/info", alice).json()["profile"]["slug"] == "cpu"


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        (
            {"profile": "cpu", "image": "ghcr.io/evil/miner:latest"},
            400,
            "image: 'ghcr.io/evil/miner:latest' is not allowed; choose one of: python, root",
        ),
        (
            {"profile": "cpu", "environment": {"LD_PRELOAD": "/tmp/x.so"}},
            400,
            "environment: {'LD_PRELOAD': '/tmp/x.so'} is not an option of this profile; options of profile 'cpu': "
            "image, size, cvmfs, s3, lifetime_hours",
        ),
        ({"profile": "gpu"}, 403, "profile: 'gpu' is only for members of gpu-users; choose one of: cpu, collab"),
        (
            {"profile": "cpu", "size": "large"},
            403,
            "size: 'large' is only for members of gpu-users; choose one of: small, medium",
        ),
    ],
)
def test_bob_cannot_craft_his_way_past_the_allowlist(demo_hub, bob, options, status, message):
    response = demo_hub.spawn(bob, options)
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert demo_hub.server_model(bob) is None


def test_bob_cannot_craft_the_form_either(demo_hub, bob):
    session = demo_hub.browser_session(bob)
    form = demo_hub.spawn_form(session, bob)
    assert 'value="cpu"' in form and 'value="collab"' in form
    assert 'value="gpu"' not in form and 'value="large"' not in form

    response = demo_hub.submit_spawn_form(session, bob, {"profile": "gpu", "gpu.gpu_count": "1"})
    assert response.status_code == 403
    assert "profile: &#39;gpu&#39; is only for members of gpu-users" in response.text
    lines = refusal_lines(demo_hub, "Failed to spawn single-user server with form")
    assert lines and "Traceback" not in demo_hub.log_text().split(lines[-1], 1)[1].split("\n[", 1)[0]


def test_no_gpu_on_this_machine_is_a_disabled_profile_and_a_clean_refusal(demo_hub, alice):
    session = demo_hub.browser_session(alice)
    form = demo_hub.spawn_form(session, alice)
    assert 'id="profile-gpu" value="gpu" disabled>' in form
    assert "Not available on this hub: no GPU on this machine (NVML: " in form
    response = demo_hub.spawn(alice, {"profile": "gpu"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("gpu_model: 'any' is not available; no GPU on this machine")

    # The form shows the message alone, with its status, not JupyterHub's "409 SpawnException(...)".
    refused = demo_hub.submit_spawn_form(session, alice, {"profile": "cpu", "cpu.image": "evil"})
    assert refused.status_code == 400
    assert (
        '<p class="spawn-error-msg alert alert-danger">Error: image: &#39;evil&#39; is not allowed; '
        "choose one of: python, root</p>" in refused.text
    )


def test_profiles_api_answers_each_user_with_their_profiles(demo_hub):
    alice = demo_hub.request("GET", "/services/sciencelab/api/profiles", "alice").json()
    bob = demo_hub.request("GET", "/services/sciencelab/api/profiles", "bob").json()
    assert [p["slug"] for p in alice["profiles"]] == ["cpu", "gpu", "collab"]
    assert [p["slug"] for p in bob["profiles"]] == ["cpu", "collab"]
    cpu = alice["profiles"][0]
    assert cpu["default"] is True
    assert [c["const"] for c in cpu["options_schema"]["properties"]["size"]["oneOf"]] == ["small", "medium", "large"]
    assert [c["const"] for c in bob["profiles"][0]["options_schema"]["properties"]["size"]["oneOf"]] == [
        "small",
        "medium",
    ]
    assert alice["gpu_quota"] == {"max_gpus": 2, "held": 0}
    assert bob["gpu_quota"] == {"max_gpus": 1, "held": 0}
    assert alice["gpu_problem"].startswith("no GPU on this machine (NVML: ")
    assert [(p["slug"], bool(p["unavailable"])) for p in alice["profiles"]] == [
        ("cpu", False),
        ("gpu", True),
        ("collab", False),
    ]
    schema = demo_hub.request("GET", "/services/sciencelab/api/profiles/schema", "bob").json()
    assert schema["title"] == "ScienceLab profiles"


def test_profiles_api_needs_a_user(demo_hub):
    import requests

    response = requests.get(f"{demo_hub.url}/services/sciencelab/api/profiles", allow_redirects=False, timeout=30)
    assert response.status_code in (302, 403)
    response = requests.get(
        f"{demo_hub.url}/services/sciencelab/api/profiles",
        timeout=30,
        headers={"Authorization": "token not-a-token"},
        allow_redirects=False,
    )
    assert response.status_code in (302, 403)


def test_check_log_fails_once_for_each_new_traceback(tmp_path):
    hub = DemoHub(tmp_path)
    hub.log_path.write_text("[I hub] 400 POST /hub/api/users/bob/server\n")
    hub.check_log()
    with hub.log_path.open("a") as log:
        log.write("[E hub] Uncaught exception\n    Traceback (most recent call last):\n      File 'x.py'\n")
    with pytest.raises(AssertionError, match=r"logged 1 traceback\(s\).*\n.*Uncaught exception"):
        hub.check_log()
    hub.check_log()  # what was quoted once does not fail the next test
