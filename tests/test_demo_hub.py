"""The real demo hub, end to end over HTTP: spawn through the REST API, reach JupyterLab via the proxy."""

import pytest

from .demo_hub import DemoHub

pytestmark = pytest.mark.hub


def test_spawn_with_profile_reaches_lab_and_our_extensions(demo_hub, alice):
    response = demo_hub.spawn(alice, {"profile": "medium"})
    assert response.status_code in (201, 202), response.text

    info = demo_hub.request("GET", "/user/alice/sciencelab/api/info", alice)
    assert info.status_code == 200, info.text
    assert info.json()["profile"] == {"slug": "medium", "display_name": "Medium: 2 CPUs, 4 GB"}

    lab = demo_hub.request("GET", "/user/alice/lab", alice)
    assert lab.status_code == 200
    assert '"name": "@sciencelab/labextension"' in lab.text or "@sciencelab/labextension" in lab.text


def test_unknown_profile_is_refused_and_hub_keeps_working(demo_hub, bob):
    log_before = demo_hub.log_path.read_text()
    refused = demo_hub.spawn(bob, {"profile": "no-such"})
    assert refused.status_code == 400
    assert refused.json()["message"] == "profile: 'no-such' is not allowed; choose one of: small, medium, large"
    refusal_log = demo_hub.log_path.read_text()[len(log_before):]
    assert "'no-such' is not allowed" in refusal_log
    assert "Traceback" not in refusal_log, "a policy refusal is one log line, not a traceback"

    assert demo_hub.request("GET", "/hub/api/users/bob", bob).json()["servers"] == {}
    assert demo_hub.spawn(bob, {"profile": "small"}).status_code in (201, 202)
    assert demo_hub.request("GET", "/user/bob/sciencelab/api/info", bob).json()["profile"]["slug"] == "small"


def test_options_outside_the_schema_are_refused(demo_hub, bob):
    refused = demo_hub.spawn(bob, {"profile": "small", "image": "attacker/image:latest"})
    assert refused.status_code == 400
    assert refused.json()["message"] == "user_options: 'image' is not allowed; choose one of: profile"


def test_wrong_profile_list_stops_the_demo_at_start(tmp_path):
    hub = DemoHub(tmp_path, extra_config='c.LocalProfileSpawner.profiles = [{"slug": "a", "display_name": "A", "mem_limit": "2 GB"}]\n')
    with pytest.raises(RuntimeError, match="the demo hub exited with 1"):
        hub.start()
    assert "profiles[0].mem_limit: '2 GB' is not a size such as '512M' or '2G'" in hub.log_tail()
