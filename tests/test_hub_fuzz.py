"""A few hundred generated option sets through the real REST spawn path of the demo hub:
nothing invalid is accepted, nothing answers 500 or worse, and no refusal logs a traceback."""

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pytest

from sciencelab_spawner.demo import DEMO_PROFILES_FILE

from .option_oracle import chosen_profile, expected_status
from .test_user_options_fuzz import KEYS, JUNK_KEYS, mutated_options, valid_options, value

pytestmark = pytest.mark.hub

DEMO_RAW = yaml.safe_load(DEMO_PROFILES_FILE.read_text())
GROUPS = {"alice": ["gpu-users"], "bob": []}



@st.composite
def rest_spawns(draw) -> tuple[str, dict]:
    """(user, options), about one in twelve valid: each valid one starts a real JupyterLab (seconds),
    each invalid one is refused at once, and invalid ones are what this test is about."""
    user = draw(st.sampled_from(["alice", "bob"]))
    if draw(st.integers(min_value=0, max_value=11)) == 0:
        return user, draw(valid_options(DEMO_RAW))
    invalid = st.one_of(mutated_options(DEMO_RAW),
                        st.dictionaries(st.sampled_from(KEYS + JUNK_KEYS), value, min_size=1, max_size=4))
    return user, draw(invalid.filter(lambda options: expected_status(options, GROUPS[user], DEMO_RAW) != 200))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(rest_spawns())
def test_rest_spawns_agree_with_the_oracle(demo_hub, spawn):
    user, options = spawn
    expected = expected_status(options, GROUPS[user], DEMO_RAW)
    if expected == 200 and "gpu" in chosen_profile(options, GROUPS[user], DEMO_RAW):
        expected = 409  # this machine has no GPU: a clean refusal, not an error
    response = demo_hub.request("POST", f"/hub/api/users/{user}/server", user, json=options)
    try:
        assert response.status_code < 500, response.text
        if expected == 200:
            assert response.status_code in (201, 202), (options, response.text)
        else:
            assert response.status_code == expected, (options, response.text)
            assert response.json()["message"]
    finally:
        if response.status_code in (201, 202):
            demo_hub.wait_until_ready(user)
            demo_hub.stop_server(user)


def test_no_refusal_logged_a_traceback(demo_hub):
    assert "Traceback" not in demo_hub.log_text()
