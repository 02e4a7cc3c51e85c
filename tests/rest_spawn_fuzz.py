"""Fuzzing the REST spawn path of a real hub (the demo hub, the Kubernetes hub): generated option
sets, and the check that each got what the independent oracle says."""

from hypothesis import strategies as st

from .option_oracle import expected_status
from .test_user_options_fuzz import JUNK_KEYS, KEYS, mutated_options, valid_options, value


@st.composite
def rest_spawns(draw, raw: dict, groups: dict[str, list[str]], valid_one_in: int) -> tuple[str, dict]:
    """(user, options), about one in `valid_one_in` valid: a valid one starts a real server (seconds),
    an invalid one is refused at once, and invalid ones are what these tests are about."""
    user = draw(st.sampled_from(sorted(groups)))
    if draw(st.integers(min_value=1, max_value=valid_one_in)) == 1:
        return user, draw(valid_options(raw))
    invalid = st.one_of(
        mutated_options(raw), st.dictionaries(st.sampled_from(KEYS + JUNK_KEYS), value, min_size=1, max_size=4)
    )
    return user, draw(invalid.filter(lambda options: expected_status(options, groups[user], raw) != 200))


def check_rest_spawn(hub, user: str, options: dict, expected: int) -> int:
    """POST `options` as `user`: never a 5xx; `expected` 200 must start the server (waited for and
    stopped again), anything else must be exactly that refusal, with a message. Returns the status."""
    response = hub.request("POST", f"/hub/api/users/{user}/server", user, json=options)
    try:
        assert response.status_code < 500, response.text
        if expected == 200:
            assert response.status_code in (201, 202), (options, response.text)
        else:
            assert response.status_code == expected, (options, response.text)
            assert response.json()["message"]
    finally:
        if response.status_code in (201, 202):
            hub.wait_until_ready(user)
            hub.stop_server(user)
    return response.status_code
