"""Session lifetimes, the pure parts: profile fields, the user's choice, terms, deadlines, Extend,
stop reasons, the store, and what the hub's pages and the server extension make of them."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from sciencelab.session import activity_check_interval, make_deadline_url
from sciencelab_spawner.profile_config import ProfileConfigError, make_profile_config
from sciencelab_spawner.session_keeper import SessionStore, make_session
from sciencelab_spawner.session_pages import make_server_notes, make_sessions_page
from sciencelab_spawner.session_terms import (
    SESSION_STATE_KEY,
    ExtendRefused,
    Session,
    SessionTerms,
    describe_duration,
    extend_session,
    make_deadline_document,
    make_session_record,
    read_session_record,
    stop_reason,
)
from sciencelab_spawner.spawn_form import make_options_form
from sciencelab_spawner.user_options import UserOptionsError, make_options_schema, resolve_user_options

START = datetime(2026, 12, 4, 14, 0, tzinfo=UTC)
PROFILES = {
    "sessions": {"idle_timeout": "4h", "gpu_idle_timeout": "30m", "exempt_groups": ["operators"]},
    "gpu_models": {"a100": {"node_label": "NVIDIA-A100-SXM4-80GB"}},
    "profiles": [
        {
            "slug": "choose",
            "display_name": "You choose",
            "lifetime": {"min": "1h", "max": "72h", "default": "8h"},
            "extend": {"step": "1h"},
        },
        {"slug": "gpu", "display_name": "GPU", "gpu": {"model": "a100"}, "lifetime": "24h"},
        {"slug": "open", "display_name": "No limit", "idle_timeout": 0},
    ],
}
CONFIG = make_profile_config(PROFILES, "profiles.yaml")


def session(**overrides) -> Session:
    fields = {
        "user": "alice",
        "server": "",
        "started": START,
        "terms": SessionTerms(lifetime=8 * 3600, idle_timeout=3600, extend_step=3600, extend_cap=10 * 3600),
        **overrides,
    }
    return Session(**fields)


def test_terms_follow_the_profile_the_choice_and_the_gpus():
    chosen = resolve_user_options(CONFIG, {"profile": "choose", "lifetime_hours": 12}, ())
    assert chosen.session == SessionTerms(
        lifetime=12 * 3600, idle_timeout=4 * 3600, extend_step=3600, extend_cap=72 * 3600
    )
    assert resolve_user_options(CONFIG, {"profile": "choose"}, ()).session.lifetime == 8 * 3600
    # GPUs are scarce: the shorter default idle timeout.
    assert resolve_user_options(CONFIG, {"profile": "gpu"}, ()).session == SessionTerms(
        lifetime=24 * 3600, idle_timeout=1800
    )
    assert resolve_user_options(CONFIG, {"profile": "open"}, ()).session == SessionTerms()


def test_the_lifetime_choice_is_an_option_with_bounds():
    schema = make_options_schema(CONFIG, CONFIG.profiles[0], ())
    assert schema["properties"]["lifetime_hours"] == {
        "title": "Session length (hours)",
        "description": "How long the server may run before the hub stops it.",
        "type": "integer",
        "minimum": 1,
        "maximum": 72,
        "default": 8,
    }
    with pytest.raises(UserOptionsError) as error:
        resolve_user_options(CONFIG, {"profile": "choose", "lifetime_hours": 100}, ())
    assert str(error.value) == "lifetime_hours: 100 is not allowed; allowed: a whole number from 1 to 72"
    with pytest.raises(UserOptionsError):
        resolve_user_options(CONFIG, {"profile": "gpu", "lifetime_hours": 2}, ())
    form = make_options_form(CONFIG, frozenset(), {}, {}, None, None)
    assert 'name="choose.lifetime_hours" id="choose-lifetime_hours" min="1" max="72" step="1" value="8"' in form
    assert "Session length:</span> 1 d" in form  # the GPU profile's fixed 24 h


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        (
            {"lifetime": {"min": "30m", "max": "2h"}},
            "p.yaml: profile 'a' (profiles[0]), lifetime.min: '30m' is not a whole number of hours; "
            "users choose a lifetime in hours",
        ),
        (
            {"lifetime": {"min": "2h", "max": "4h", "default": "8h"}},
            "p.yaml: profile 'a' (profiles[0]), lifetime: needs min <= default <= max, got min 7200 s, "
            "default 28800 s, max 14400 s",
        ),
        (
            {"extend": {"step": "1h"}},
            "p.yaml: profile 'a' (profiles[0]), extend: a profile without a lifetime has nothing to extend; "
            "add `lifetime`",
        ),
        (
            {"lifetime": "8h", "extend": {"step": "1h", "cap": "4h"}},
            "p.yaml: profile 'a' (profiles[0]), extend.cap: '4h' is shorter than the longest lifetime (28800 s) "
            "it extends",
        ),
    ],
)
def test_profile_errors_name_the_field(profile, message):
    with pytest.raises(ProfileConfigError) as error:
        make_profile_config({"profiles": [{"slug": "a", "display_name": "A", **profile}]}, "p.yaml")
    assert str(error.value) == message


def test_terms_round_trip_through_the_server_state():
    terms = SessionTerms(lifetime=60, idle_timeout=0, extend_step=30, extend_cap=90)
    assert read_session_record(json.loads(json.dumps(make_session_record(terms)))) == terms
    assert read_session_record(None) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (45, "45 s"), (90, "1 min 30 s"), (3600, "1 h"), (8100, "2 h 15 min"), (90061, "1 d 1 h")],
)
def test_describe_duration(seconds, words):
    assert describe_duration(seconds) == words


def test_the_deadline_document():
    assert make_deadline_document(session(extended=1800), START + timedelta(minutes=5)) == {
        "deadline": "2026-12-04T22:30:00+00:00",
        "idle_timeout": 3600,
        "extend_until": "2026-12-05T00:00:00+00:00",
        "extend_step": 3600,
        "exempt": False,
        "started": "2026-12-04T14:00:00+00:00",
        "now": "2026-12-04T14:05:00+00:00",
    }
    exempt = make_deadline_document(session(exempt=True), START)
    assert (exempt["deadline"], exempt["idle_timeout"], exempt["extend_until"], exempt["exempt"]) == (
        None,
        None,
        None,
        True,
    )


def test_extend_adds_a_step_up_to_the_cap_then_refuses():
    assert extend_session(session()) == 3600
    assert extend_session(session(extended=3600 + 1800)) == 7200  # the last half step
    with pytest.raises(ExtendRefused) as error:
        extend_session(session(extended=7200))
    assert str(error.value) == (
        "alice's server already runs until 05 Dec 00:00 UTC, the cap of its profile (10 h in all since it "
        "started); it cannot be extended further"
    )
    with pytest.raises(ExtendRefused, match="its profile does not allow Extend"):
        extend_session(session(terms=SessionTerms(lifetime=60)))
    with pytest.raises(ExtendRefused, match="its user's group is exempt from limits"):
        extend_session(session(exempt=True))


def test_stop_reasons():
    deadline = START + timedelta(hours=8)
    assert stop_reason(session(), START, deadline - timedelta(seconds=1)) == (
        "it was idle for 7 h 59 min (its profile's idle timeout is 1 h)"
    )
    busy = deadline - timedelta(seconds=10)
    assert stop_reason(session(), busy, deadline - timedelta(seconds=1)) is None
    assert stop_reason(session(), busy, deadline) == (
        "it reached the end of its session (8 h since it started, at 04 Dec 22:00 UTC)"
    )
    assert stop_reason(session(exempt=True), START, deadline + timedelta(days=3)) is None


def test_the_store_keeps_extensions_across_restarts_and_forgets_old_sessions(tmp_path):
    path = tmp_path / "sessions.json"
    store = SessionStore(path)
    store.record(session(extended=3600))
    store.save()
    again = SessionStore(path)
    assert again.extended("alice/", START) == 3600
    assert again.extended("alice/", START + timedelta(seconds=1)) == 0  # a new session
    again.record_stop(session(), "stopped because it was idle", START + timedelta(hours=2))
    assert SessionStore(path).stops == {
        "alice/": {"at": "2026-12-04T16:00:00+00:00", "reason": "stopped because it was idle"}
    }


def test_a_session_is_read_from_the_hubs_user_model(tmp_path):
    server = {
        "ready": True,
        "pending": None,
        "started": "2026-12-04T14:00:00.000000Z",
        "state": {SESSION_STATE_KEY: make_session_record(SessionTerms(lifetime=60))},
    }
    user = {"name": "alice", "groups": ["operators"]}
    store = SessionStore(tmp_path / "s.json")
    assert make_session(user, "gpu", server, frozenset({"operators"}), store) == Session(
        "alice", "gpu", START, SessionTerms(lifetime=60), exempt=True
    )
    assert make_session(user, "gpu", {**server, "ready": False}, frozenset(), store) is None
    assert make_session(user, "gpu", {**server, "state": {}}, frozenset(), store) is None


def test_the_hub_pages_notes():
    store = {
        "sessions": {
            "alice/": {
                "started": START.isoformat(),
                "deadline": (START + timedelta(hours=8)).isoformat(),
                "idle_timeout": 3600,
            },
            "alice/old": {"started": START.isoformat(), "deadline": None, "idle_timeout": None},
            "bob/": {"started": START.isoformat(), "deadline": None, "idle_timeout": 60},
        },
        "stops": {"alice/gpu": {"at": START.isoformat(), "reason": "stopped because it was idle for 2 h"}},
    }
    started = {"": START.replace(tzinfo=None), "old": START.replace(tzinfo=None), "gpu": None}
    assert make_server_notes(store, "alice", started, START + timedelta(hours=6)) == {
        "": {"deadline": "Stops at 04 Dec 22:00 UTC (2 h left).", "idle": "Stops after 1 h without activity."},
        "gpu": {"stopped": "Your server was stopped because it was idle for 2 h, at 04 Dec 14:00 UTC."},
    }
    # A record of an earlier session of the same server says nothing.
    restarted = {"": START.replace(tzinfo=None) + timedelta(hours=1), "gpu": START.replace(tzinfo=None)}
    assert make_server_notes(store, "alice", restarted, START) == {}


def test_the_admin_page_escapes_names():
    row = session(user="<b>eve</b>")
    page = make_sessions_page(
        [(row, {"last_activity": "2026-12-04T14:30:00Z"})], START + timedelta(hours=1), "/services/sciencelab/", "x"
    )
    assert "&lt;b&gt;eve&lt;/b&gt;" in page and "<b>eve</b>" not in page
    assert "04 Dec 22:00 UTC (7 h left)" in page and "30 min" in page


def test_the_server_finds_its_deadline_at_the_hub_service():
    environ = {
        "SCIENCELAB_SERVICE_URL": "http://127.0.0.1:10101",
        "JUPYTERHUB_USER": "alice@lab",
        "JUPYTERHUB_SERVER_NAME": "gpu 1",
        "JUPYTERHUB_BASE_URL": "/hub-prefix/",
    }
    assert make_deadline_url(environ) == (
        "http://127.0.0.1:10101/hub-prefix/services/sciencelab/api/users/alice%40lab/servers/gpu%201/deadline"
    )
    assert make_deadline_url({"JUPYTERHUB_USER": "alice"}) is None
    assert activity_check_interval({"JUPYTERHUB_ACTIVITY_INTERVAL": "1"}) == 0.5
    assert activity_check_interval({}) == 60
