"""The server extension inside a real Jupyter Server (pytest-jupyter starts it in-process)."""

import json
import re

import pytest
from tornado.httpclient import HTTPClientError
from tornado.web import RequestHandler

from sciencelab import __version__
from sciencelab.info import make_info
from sciencelab.request_json import cut, shown
from sciencelab_spawner.profile_record import PROFILE_RECORD_ENV, make_profile_record
from sciencelab_spawner.user_options import resolve_user_options

from .profile_examples import example_config

SCIENCELAB_ROUTE_PREFIX = "/sciencelab/"
HTTP_VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def jp_server_config():
    """Enable only our extension, as the installed `jupyter-config` file does for users."""
    return {"ServerApp": {"jpserver_extensions": {"sciencelab": True}}}


def test_make_info_reads_the_record_the_spawner_writes():
    # The two sides share no code: the spawner writes the record, the extension reads it.
    resolved = resolve_user_options(example_config(), {"profile": "a100", "gpu_count": 2}, ["gpu-users"])
    record = make_profile_record(resolved, ["GPU-1", "GPU-2"])
    info = make_info({PROFILE_RECORD_ENV: json.dumps(record)})
    assert info == {
        "version": __version__,
        "profile": record,
        "features": {"dask_clusters": True, "gpu_monitor": False, "session_sharing": False},
        "batch_job": None,
    }
    assert info["profile"]["gpu"] == {
        "model": "a100",
        "display_name": "NVIDIA A100 80 GB",
        "count": 2,
        "resource": "nvidia.com/gpu",
        "devices": ["GPU-1", "GPU-2"],
    }
    assert info["profile"]["resources"] == {
        "cpu_guarantee": 4.0,
        "cpu_limit": 8.0,
        "mem_guarantee": 16 * 1024**3,
        "mem_limit": 32 * 1024**3,
    }


def test_make_info_names_the_slurm_job_the_server_runs_as():
    environ = {"SLURM_JOB_ID": "42", "SLURMD_NODENAME": "node-07", "SLURM_JOB_PARTITION": "gpu"}
    assert make_info(environ)["batch_job"] == {
        "scheduler": "slurm",
        "job_id": "42",
        "node": "node-07",
        "partition": "gpu",
    }


def test_make_info_without_or_with_an_unreadable_record():
    assert make_info({})["profile"] is None
    for text in ("{not json", json.dumps({"version": 99})):
        profile = make_info({"SCIENCELAB_PROFILE": text})["profile"]
        assert profile["display_name"] == "Unknown profile"
        assert profile["notices"] == [
            f"The hub sent a profile record this ScienceLab {__version__} cannot read; "
            "update ScienceLab in the server image."
        ]


async def test_info_answers_authenticated_requests(jp_fetch):
    response = await jp_fetch("sciencelab", "api", "info")
    assert response.code == 200
    assert json.loads(response.body)["version"] == __version__


def sciencelab_routes(router) -> list[tuple[str, type]]:
    """Every (path pattern, handler class) `router` and its nested routers send under /sciencelab/."""
    routes = []
    for rule in router.rules:
        if hasattr(rule.target, "rules"):
            routes += sciencelab_routes(rule.target)
        elif SCIENCELAB_ROUTE_PREFIX in getattr(rule.matcher, "regex", re.compile("")).pattern:
            routes.append((rule.matcher.regex.pattern.rstrip("$"), rule.target))
    return routes


async def test_every_sciencelab_handler_requires_authentication(jp_serverapp, jp_fetch):
    routes = sciencelab_routes(jp_serverapp.web_app.default_router)
    assert routes, "the extension registered no routes"
    for pattern, handler in routes:
        # A route with a parameter, such as `clusters/(?P<cluster_id>[^/]+)`, is tried with `x` in it.
        path = re.sub(r"\(\?P<\w+>[^)]*\)", "x", pattern.split(jp_serverapp.base_url, 1)[1])
        for verb in HTTP_VERBS:
            if getattr(handler, verb.lower()) is getattr(RequestHandler, verb.lower()):
                continue  # tornado's default: 405 for every caller
            body = b"{}" if verb in ("POST", "PUT", "PATCH") else None
            with pytest.raises(HTTPClientError) as error:
                await jp_fetch(path, method=verb, body=body, headers={"Authorization": ""})
            assert error.value.code in (401, 403), f"{verb} {pattern} answered without authentication"


def test_refused_values_are_shown_cut_short_and_three_levels_deep():
    assert shown("x" * 10) == "'xxxxxxxxxx'"
    assert shown("x" * 100) == f"'{'x' * 79}… (102 characters)"
    assert shown(float("nan")) == "nan"
    assert shown([[[[[1]]]]]) == "[[[[...]]]]"
    assert shown({"b": 1, "a": [1, 2, 3, 4, 5, 6, 7]}) == "{'a': [1, 2, 3, 4, 5, 6, ...], 'b': 1}"
    assert cut("k" * 80) == "k" * 80
    assert cut("k" * 81) == f"{'k' * 80}… (81 characters)"


@pytest.mark.parametrize(
    "jp_server_config",
    [{"ServerApp": {"jpserver_extensions": {"sciencelab": True}}, "SciencelabApp": {"max_request_bytes": 100}}],
)
async def test_the_body_limit_is_a_setting(jp_fetch):
    response = await jp_fetch(
        "sciencelab",
        "api",
        "dask",
        "clusters",
        method="POST",
        body=json.dumps({"template": "x" * 100}),
        raise_error=False,
    )
    assert (response.code, json.loads(response.body)) == (
        400,
        {"message": "body: 116 bytes is more than the 100 bytes this server reads"},
    )
