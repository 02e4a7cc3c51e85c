"""Every route of ScienceLab, fuzzed against real servers: no answer is a 5xx, none carries a
traceback, no log gains one, and refused values come back and go to the log cut short.

The server extension runs in a real `jupyter server` (tests/lab_server.py) whose Dask limits allow
the two real clusters made at the start and nothing more, so a valid create is refused with 403
instead of starting a cluster; its REST routes get bodies of every verb and query strings, its two
WebSockets (cluster updates, GPU stream) get messages. The hub's side runs on the session's demo
hub: REST spawns, spawn forms and spawn URLs with options in the query, and the `sciencelab`
service. Bodies include invalid UTF-8, NaN and Infinity, numbers beyond a float, whole numbers of
thousands of digits, nesting a thousand deep, wrong types and 1 MB. Hypothesis runs derandomized,
so every run sends the same cases; run with `-s` to see how many and what they were answered.

Left out, and pinned by `test_jupyterhub_answers_invalid_utf8_in_spawn_fields_with_its_own_500`:
JupyterHub decodes spawn form fields and spawn URL queries as UTF-8 before our spawner sees them,
and answers invalid UTF-8 there with a 500 of its own.
"""

import json
import math
from collections import Counter
from urllib.parse import quote, quote_from_bytes, urlencode

import pytest
import requests
import websocket
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websocket import ABNF

from sciencelab.app import SciencelabApp
from sciencelab_spawner.demo import DEMO_PROFILES_FILE

from .lab_server import LabServer
from .service_process import TracebackWatch

# The same cases every run; no example database that would add others.
FUZZING = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
TEMPLATES = {"small": {"backend": "local", "options": {"workers": {"default": 0, "minimum": 0, "maximum": 2}}}}
# The two clusters made at the start use up the limit: a valid create is a 403, never a cluster.
LIMITS = {"default": {"clusters": 2, "workers": 0}}
MAX_REQUEST_BYTES = SciencelabApp.class_traits()["max_request_bytes"].default_value
# An answer quotes what it refuses cut to 80 characters: no refusal comes near this.
MAX_REFUSAL_BYTES = 2000
SAMPLES = Counter()  # (target, answer) -> cases
LOGGED = Counter()  # target -> bytes its cases added to the server's log

# ---- what is sent ----------------------------------------------------------------------------

MEGABYTE = 2**20
SPECIAL_BODIES = [
    b" ",
    b"[]",
    b'"text"',
    b"0",
    b"\xff",
    b"\xc3\x28",
    b'{"template": "\xed\xa0\x80"}',  # a UTF-16 surrogate encoded in UTF-8: not UTF-8
    b"\xef\xbb\xbf{}",  # a byte order mark
    b"NaN",
    b"-Infinity",
    b'{"workers": NaN}',
    b'{"interval": Infinity}',
    b"1e400",
    b'{"workers": -1e400}',
    b"9" * 5000,
    b'{"workers": ' + b"9" * 5000 + b"}",
    b"[" * 100_000,
    b"[" * 900 + b"]" * 900,
    b'{"a":' * 900 + b"1" + b"}" * 900,
    b"x" * MEGABYTE,
    b'{"template": "' + b"x" * MEGABYTE + b'"}',
    b'{"profile": "cpu", "image": "' + b"y" * (MEGABYTE // 2) + b'"}',
]
SPECIAL_VALUES = [
    float("nan"),
    float("inf"),
    -float("inf"),
    1e308,
    10**400,
    -(2**63),
    True,
    None,
    "2",
    "",
    "%s%n",
    "<script>alert(1)</script>",
    "y" * 50_000,  # under the size limit: refused as a value, and quoted cut short
    [1, 2],
    {"minimum": 1},
]
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=12),
        st.sampled_from(SPECIAL_VALUES),
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
numbers = st.one_of(st.integers(min_value=-3, max_value=70), st.floats(min_value=-1, max_value=100), values)


def encoded(value) -> bytes:
    """JSON as Python writes it: NaN and Infinity included, lone surrogates escaped."""
    return json.dumps(value).encode()


def raw_encoded(value) -> bytes:
    """JSON with non-ASCII characters as they are: a lone surrogate becomes invalid UTF-8."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def bodies(shaped: st.SearchStrategy) -> st.SearchStrategy:
    """Request bodies: JSON in a route's own shape, any JSON, special bytes, random bytes."""
    json_values = st.one_of(shaped, values)
    return st.one_of(
        json_values.map(encoded),
        json_values.map(raw_encoded),
        st.sampled_from(SPECIAL_BODIES),
        st.binary(max_size=40),
    )


def some_of(fields: dict) -> st.SearchStrategy:
    """Objects with some of `fields` (name -> value strategy) and now and then a made-up one."""
    return st.fixed_dictionaries({}, optional={**fields, "name": values, "x" * 500: values})


option_names = st.sampled_from(["workers", "memory", "idle_timeout", "adaptive", "cores", "gpus", "environment"])
create_bodies = bodies(
    some_of(
        {
            "template": st.sampled_from(["small", "cms-only", "", "../small"]) | values,
            "options": st.dictionaries(option_names | st.text(max_size=6), numbers, max_size=3) | values,
            "adopt": st.sampled_from(["small-1", ""]) | values,
        }
    )
)
scale_bodies = bodies(
    st.one_of(
        st.fixed_dictionaries({"workers": numbers}),
        st.fixed_dictionaries({"adapt": some_of({"minimum": numbers, "maximum": numbers})}),
        st.fixed_dictionaries({"adapt": values}),
        some_of({"workers": numbers, "adapt": values}),
    )
)
gpu_bodies = bodies(
    st.dictionaries(st.sampled_from(["interval", "idle_threshold", "idle_duration"]) | st.text(max_size=6), numbers)
)
interval_messages = st.one_of(
    st.fixed_dictionaries({"interval": numbers}),
    some_of({"interval": numbers}),
    values,
)
query_strings = st.one_of(
    st.just(""),
    st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3).map(urlencode),
    st.binary(max_size=30).map(lambda raw: quote_from_bytes(raw, safe="=&")),
    st.sampled_from(["interval=NaN", "%FF=%FF", "a=" + "b" * 1000, "token="]),
)
junk_ids = st.one_of(
    st.text(min_size=1, max_size=20),
    st.sampled_from(["0123abcd", "..", "%FF", "\udcff", "x" * 3000, "updates"]),
)


def path_segment(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# Each case: (method, path below sciencelab/api/, body); "{cluster}" is one of the real clusters.
server_requests = st.one_of(
    st.tuples(st.just("POST"), st.just("dask/clusters"), create_bodies),
    st.tuples(
        st.just("PATCH"),
        (st.just("{cluster}") | junk_ids.map(path_segment)).map(lambda ref: f"dask/clusters/{ref}"),
        scale_bodies,
    ),
    st.tuples(st.just("PATCH"), st.just("gpu"), gpu_bodies),
    st.tuples(st.sampled_from(["GET", "POST"]), st.just("session"), bodies(values)),
    st.tuples(st.sampled_from(["GET", "POST", "DELETE"]), st.sampled_from(["shares", "share-codes"]), bodies(values)),
    st.tuples(
        st.just("GET"),
        st.sampled_from(
            [
                "info",
                "gpu",
                "dask/templates",
                "dask/clusters",
                "dask/clusters/{cluster}",
                "dask/clusters/{cluster}/logs",
            ]
        )
        | junk_ids.map(lambda ref: f"dask/clusters/{path_segment(ref)}/logs"),
        bodies(values),
    ),
    # DELETE only clusters that are not there: the real ones are shut down at the end.
    st.tuples(st.just("DELETE"), junk_ids.map(lambda ref: f"dask/clusters/{path_segment(ref)}"), bodies(values)),
    st.tuples(
        st.sampled_from(["PUT", "POST", "DELETE", "PATCH"]),
        st.sampled_from(["info", "dask/templates", "dask/clusters/{cluster}/logs"]),
        bodies(values),
    ),
)


# ---- the Jupyter server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A `jupyter server` with the extension, the templates and limits above, and the two real
    clusters those limits allow; afterwards they are shut down and the server stopped."""
    server = LabServer(
        tmp_path_factory.mktemp("fuzzed-server"),
        config={"ClusterManager": {"templates": TEMPLATES, "limits": LIMITS}},
        app="server",
    ).start()
    server.log_watch = TracebackWatch(server.log_path, "the Jupyter server")
    try:
        server.clusters = []
        for _ in range(2):
            response = server.request("POST", "sciencelab/api/dask/clusters", {"template": "small"}, timeout=120)
            assert response.status_code == 201, response.text
            server.clusters.append(response.json()["id"])
        yield server
        for cluster in server.clusters:
            # A DELETE's body is not read, whatever it is.
            response = requests.delete(
                f"{server.url}/sciencelab/api/dask/clusters/{cluster}",
                data=b"\xff" * 100,
                headers={"Authorization": f"token {server.token}"},
                timeout=60,
            )
            assert response.status_code == 204, response.text
        server.log_watch.check()
    finally:
        server.stop()
        print(f"fuzzed server log: {server.log_path}")


@pytest.fixture
def fuzzed_server(lab):
    """The module's server; the test fails if its log gained a traceback while it ran."""
    yield lab
    lab.log_watch.check()


@pytest.fixture(scope="module", autouse=True)
def tally():
    """Prints, after the module, how many cases each target got and how they were answered."""
    yield
    print(f"\nfuzzed cases: {sum(SAMPLES.values())}")
    for target in dict.fromkeys(target for target, _ in SAMPLES):
        answers = {answer: n for (name, answer), n in SAMPLES.items() if name == target}
        cases = sum(answers.values())
        logged = f"; {LOGGED[target] / cases:.0f} log bytes a case" if target in LOGGED else ""
        print(f"  {target}: {cases} cases; answers {dict(sorted(answers.items(), key=str))}{logged}")


def check_answer(target: str, response: requests.Response) -> int:
    """Count the answer; fail on a 5xx or traceback text in it. Returns the status."""
    SAMPLES[target, response.status_code] += 1
    assert response.status_code < 500, response.text[:2000]
    assert "Traceback" not in response.text
    return response.status_code


@settings(FUZZING, max_examples=340)
@given(case=server_requests, query=query_strings)
def test_server_extension_rest_routes(fuzzed_server, case, query):
    server = fuzzed_server
    method, path, body = case
    path = path.replace("{cluster}", server.clusters[len(body) % 2])
    url = f"{server.url}/sciencelab/api/{path}" + (f"?{query}" if query else "")
    log_before = server.log_path.stat().st_size
    response = requests.request(
        method, url, data=body, headers={"Authorization": f"token {server.token}"}, timeout=60, allow_redirects=False
    )
    status = check_answer("server REST", response)
    assert status != 201, "the limits allow no cluster beyond the two made at the start"
    if 400 <= status < 500 and response.headers["Content-Type"].startswith("application/json"):
        # Not JSON: the HTML 405 of the updates WebSocket's URL, which takes GET only.
        assert len(response.content) <= MAX_REFUSAL_BYTES, response.text[:2000]
        assert isinstance(response.json()["message"], str) and response.json()["message"]
    # A line or two per request (with the URL), however large the body was; the clusters' own
    # lines come in between now and then, and the bodies of 50 kB and 1 MB would stand out.
    logged = server.log_path.stat().st_size - log_before
    LOGGED["server REST"] += logged
    assert logged <= 10_000 + 2 * len(url)


def valid_interval_request(data: bytes | str) -> bool:
    """The test's own reading of what the updates WebSocket takes: {"interval": 0 to 60}."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    try:
        request = json.loads(data.decode() if isinstance(data, bytes) else data, parse_constant=refuse)
        interval = request["interval"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return False
    size = len(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return (
        size <= MAX_REQUEST_BYTES
        and set(request) == {"interval"}
        and type(interval) in (int, float)
        and math.isfinite(interval)
        and 0 <= interval <= 60
    )


@pytest.fixture(scope="module")
def updates(lab):
    """The cluster updates WebSocket of the module's server."""
    socket = websocket.create_connection(
        f"ws://127.0.0.1:{lab.port}/sciencelab/api/dask/clusters/updates",
        header=[f"Authorization: token {lab.token}"],
        timeout=30,
    )
    assert json.loads(socket.recv())["type"] == "clusters"
    yield socket
    socket.close()


@settings(FUZZING, max_examples=100)
@given(message=st.one_of(bodies(interval_messages), interval_messages.map(json.dumps)))
def test_cluster_updates_websocket_messages(fuzzed_server, updates, message):
    if isinstance(message, bytes):
        updates.send_binary(message)
    else:
        updates.send(message)
    if valid_interval_request(message):
        SAMPLES["updates WebSocket", "taken"] += 1
        return
    while (reply := json.loads(updates.recv()))["type"] == "clusters":
        pass  # a push of the clusters' state, not the answer
    SAMPLES["updates WebSocket", reply["type"]] += 1
    assert reply["type"] == "error" and reply["message"], reply
    assert len(reply["message"]) <= MAX_REFUSAL_BYTES and "Traceback" not in reply["message"]


@settings(FUZZING, max_examples=40)
@given(message=bodies(values))
def test_gpu_stream_websocket_messages(fuzzed_server, message):
    # The stream only talks: whatever a client says, the socket keeps answering and nothing is logged.
    socket = websocket.create_connection(
        f"ws://127.0.0.1:{fuzzed_server.port}/sciencelab/api/gpu/stream",
        header=[f"Authorization: token {fuzzed_server.token}"],
        timeout=30,
    )
    try:
        socket.send_binary(message)
        socket.ping(b"still there?")
        while (frame := socket.recv_data_frame(control_frame=True)[1]).opcode != ABNF.OPCODE_PONG:
            pass  # a sample
        assert frame.data == b"still there?"
        SAMPLES["GPU stream WebSocket", "ignored"] += 1
    finally:
        socket.close()


# ---- the hub -------------------------------------------------------------------------------------

DEMO = yaml.safe_load(DEMO_PROFILES_FILE.read_text())
SLUGS = [profile["slug"] for profile in DEMO["profiles"]]
OPTION_KEYS = ["image", "size", "gpu_model", "gpu_count", "cvmfs", "s3", "collaborative"]
FORM_NAMES = ["profile", *(f"{slug}.{key}" for slug in SLUGS for key in OPTION_KEYS)]
field_values = st.one_of(
    st.sampled_from(["cpu", "gpu", "collab", "root", "medium", "on", "2", "cms.cern.ch", ""]),
    st.text(max_size=12),
    st.sampled_from(["²", "9" * 5000]),
)


def spawn_fields(values: st.SearchStrategy) -> st.SearchStrategy:
    """The fields of a spawn form (name -> values): the form's own, tornado's, made-up ones."""
    names = st.sampled_from(FORM_NAMES) | st.sampled_from(["_xsrf", "cpu", "cpu.", ".image", "x" * 300])
    return st.dictionaries(
        names | st.text(max_size=8), st.lists(values, min_size=1, max_size=2), min_size=1, max_size=4
    )


# A form may carry 100 kB; a URL that long is refused by the proxy before the hub sees it.
form_fields = spawn_fields(field_values | st.just("y" * 100_000))
query_fields = spawn_fields(field_values)
# Options with, after any of the real ones, one that no profile offers: always refused, so the
# REST cases never start a server (tests/test_hub_fuzz.py spawns valid ones), and every value
# before it is checked first.
refused_options = st.builds(
    lambda known, unknown: {**known, **unknown},
    some_of({"profile": st.sampled_from(SLUGS) | values, **dict.fromkeys(OPTION_KEYS, values)}),
    st.dictionaries(
        st.sampled_from(["environment", "mem_limit", "x" * 500]) | st.text(min_size=1, max_size=8).map("x-{}".format),
        values,
        min_size=1,
        max_size=1,
    ),
)
rest_bodies = st.one_of(
    refused_options.map(encoded),
    refused_options.map(raw_encoded),
    st.fixed_dictionaries({"user_options": refused_options}, optional={"display_name": values}).map(encoded),
    # JupyterHub takes no body, and any JSON that is false (`[]`, `0`, `""`), for no options at all.
    st.sampled_from([body for body in SPECIAL_BODIES if body not in (b"[]", b"0")]),
    st.binary(min_size=1, max_size=40),
    values.filter(lambda value: value and not isinstance(value, dict)).map(encoded),
)
INVALID_SERVER_NAME = "a" * 300  # refused by JupyterHub, before anything of ours
server_names = st.sampled_from(["", "fuzz", INVALID_SERVER_NAME])


def unknown_field(fields: dict) -> str | None:
    """The first field of a spawn form that is neither `profile`, tornado's or JupyterHub's own,
    a field of a profile's option, nor any field of the selected profile; None if there is none."""
    selected = fields.get("profile", [None])
    prefix = f"{selected[0]}." if len(selected) == 1 else None
    for name in fields:
        mine = prefix is not None and name.startswith(prefix)
        if name not in FORM_NAMES and name not in ("_xsrf", "token") and not mine:
            return name
    return None


def spawn_outcome(hub, user: str, server: str, response: requests.Response, target: str):
    """Check the answer; a spawn it started is waited for and stopped, so the next case starts clean."""
    status = check_answer(target, response)
    if status in (201, 202, 302):
        hub.wait_until_ready(user, server)
        hub.stop_server(user, server)
    return status


@pytest.mark.hub
@settings(FUZZING, max_examples=120)
@given(body=rest_bodies, server=server_names, user=st.sampled_from(["alice", "bob"]))
def test_rest_spawn_bodies(demo_hub, body, server, user):  # `server`: the server's name
    path = f"/hub/api/users/{user}/servers/{server}" if server else f"/hub/api/users/{user}/server"
    response = demo_hub.request("POST", path, user, data=body, headers={"Content-Type": "application/json"})
    status = spawn_outcome(demo_hub, user, server, response, "hub REST spawn")
    assert status not in (201, 202), "every case sends something no profile takes"
    assert len(response.content) <= MAX_REFUSAL_BYTES, response.text[:2000]


@pytest.fixture(scope="module")
def bob_login(demo_hub_process) -> dict:
    """The cookies of bob's browser after he logged in, sent as they are with every case: an error
    page the hub renders before it knows the user sets an anonymous XSRF cookie, which would fail
    the next case's form with a 403."""
    return {cookie.name: cookie.value for cookie in demo_hub_process.browser_session("bob").cookies}


def as_bob(login: dict) -> dict:
    """What bob's browser sends with a form: his cookies and the XSRF token of his session."""
    return {"cookies": login, "headers": {"X-XSRFToken": login["_xsrf"]}}


@pytest.mark.hub
@settings(FUZZING, max_examples=60)
@given(fields=form_fields, server=server_names, multipart=st.booleans())
def test_spawn_form_fields(demo_hub, bob_login, fields, server, multipart):
    if "_xsrf" in fields:  # read before the header: the form's own token, then
        fields = {**fields, "_xsrf": [bob_login["_xsrf"]]}
    pairs = [(name, value) for name, values in fields.items() for value in values]
    send = {"files": [(name, (None, value)) for name, value in pairs]} if multipart else {"data": pairs}
    url = f"{demo_hub.url}/hub/spawn/bob" + (f"/{server}" if server else "")
    response = requests.post(url, allow_redirects=False, timeout=120, **send, **as_bob(bob_login))
    status = spawn_outcome(demo_hub, "bob", server, response, "hub spawn form")
    # Multipart bodies: tornado refuses some field names itself ("missing name"), with a 400.
    if unknown_field(fields) is not None and server != INVALID_SERVER_NAME and not multipart:
        assert status == 400 and "the form sends profile and" in response.text, (fields, response.text[-3000:])


@pytest.mark.hub
@settings(FUZZING, max_examples=40)
@given(fields=query_fields, prefixed=st.booleans())
def test_spawn_url_queries(demo_hub, bob_login, fields, prefixed):
    fields = {name: values for name, values in fields.items() if name not in ("next", "display_name")}
    pairs = [(f"opt-{name}" if prefixed else name, value) for name, values in fields.items() for value in values]
    url = f"{demo_hub.url}/hub/spawn/bob?{urlencode(pairs)}"
    response = requests.get(url, allow_redirects=False, timeout=120, **as_bob(bob_login))
    status = spawn_outcome(demo_hub, "bob", "", response, "hub spawn URL")
    if unknown_field(fields) is not None and not (prefixed and "" in fields):  # `opt-` alone: JupyterHub's 422
        assert status == 400 and "the form sends profile and" in response.text, (fields, response.text[-3000:])


@pytest.mark.hub
@settings(FUZZING, max_examples=30)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    path=st.sampled_from(
        [
            "api/profiles",
            "api/profiles/schema",
            "oauth_callback",
            "api/users/bob/server/deadline",
            "api/users/alice/server/deadline",
            "api/users/bob/servers/gpu/deadline",
            "api/users/alice/server",
            "sessions",
        ]
    )
    # Not a lone surrogate: the hub's proxy answers its encoding (invalid UTF-8) itself (pinned below).
    | junk_ids.filter(lambda ref: "\udcff" not in ref).map(
        lambda ref: f"api/users/{path_segment(ref)}/server/deadline"
    ),
    query=query_strings,
    body=bodies(values),
)
def test_sciencelab_service_routes(demo_hub, method, path, query, body):
    url = f"/services/sciencelab/{path}" + (f"?{query}" if query else "")
    response = demo_hub.request(method, url, "bob", data=body, allow_redirects=False)
    check_answer("hub service", response)


@pytest.mark.hub
def test_jupyterhub_answers_invalid_utf8_in_spawn_fields_with_its_own_500(demo_hub, bob_login):
    """A JupyterHub bug, pinned: `SpawnHandler._get` and `_post` (jupyterhub/handlers/pages.py,
    6.1.1 and main) decode the fields with `bs.decode('utf8')` before their error handling, so
    the spawner never sees them. When this fails, JupyterHub answers 4xx: delete this test and let
    the spawn form and URL cases above send invalid UTF-8 too."""
    bob = as_bob(bob_login)
    bob["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
    form = requests.post(f"{demo_hub.url}/hub/spawn/bob", data=b"profile=%FF", allow_redirects=False, timeout=60, **bob)
    query = requests.get(f"{demo_hub.url}/hub/spawn/bob?profile=%FF", allow_redirects=False, timeout=60, **bob)
    assert (form.status_code, query.status_code) == (500, 500)
    with pytest.raises(AssertionError, match="UnicodeDecodeError"):
        demo_hub.check_log()  # read here, so that the fixture does not fail on JupyterHub's traceback


@pytest.mark.hub
def test_the_hubs_proxy_answers_invalid_utf8_in_a_path_with_its_own_500(demo_hub):
    """configurable-http-proxy's behaviour, pinned: it decodes each path with JavaScript's
    `decodeURIComponent` to route it, which throws "URI malformed" for percent-encoded invalid
    UTF-8, so neither the hub nor its services see the request. When this fails, the proxy answers
    4xx: delete this test and let the service cases above send such paths too."""
    url = f"{demo_hub.url}/services/sciencelab/api/users/{path_segment(chr(0xDCFF))}/server/deadline"
    response = requests.get(url, headers={"Authorization": f"token {demo_hub.token('bob')}"}, timeout=60)
    assert (response.status_code, "URIError: URI malformed" in demo_hub.log_text()) == (500, True)
