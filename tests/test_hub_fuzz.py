"""A few hundred generated option sets through the real REST spawn path of the demo hub:
nothing invalid is accepted, nothing answers 500 or worse, and no refusal logs a traceback (the
`demo_hub` fixture checks the hub's log after the test)."""

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from sciencelab_spawner.demo import DEMO_PROFILES_FILE

from .option_oracle import chosen_profile, expected_status
from .rest_spawn_fuzz import check_rest_spawn, rest_spawns

pytestmark = pytest.mark.hub

DEMO_RAW = yaml.safe_load(DEMO_PROFILES_FILE.read_text())
GROUPS = {"alice": ["gpu-users"], "bob": []}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(rest_spawns(DEMO_RAW, GROUPS, valid_one_in=12))
def test_rest_spawns_agree_with_the_oracle(demo_hub, spawn):
    user, options = spawn
    expected = expected_status(options, GROUPS[user], DEMO_RAW)
    if expected == 200 and "gpu" in chosen_profile(options, GROUPS[user], DEMO_RAW):
        expected = 400  # this machine has no GPU: a clean refusal, not an error
    check_rest_spawn(demo_hub, user, options, expected)
