"""The server extension inside a real Jupyter Server (pytest-jupyter starts it in-process)."""

import json
import re

import pytest
from tornado.httpclient import HTTPClientError
from tornado.web import RequestHandler

from sciencelab import __version__
from sciencelab.info import make_info

SCIENCELAB_ROUTE_PREFIX = "/sciencelab/"
HTTP_VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def jp_server_config():
    """Enable only our extension, as the installed `jupyter-config` file does for users."""
    return {"ServerApp": {"jpserver_extensions": {"sciencelab": True}}}


def test_make_info_reports_profile_from_spawner_environment():
    assert make_info({"SCIENCELAB_PROFILE": "small", "SCIENCELAB_PROFILE_DISPLAY_NAME": "Small"}) == {
        "version": __version__,
        "profile": {"slug": "small", "display_name": "Small"},
        "features": {"dask_clusters": True, "gpu_monitor": False, "session_sharing": False},
    }
    assert make_info({})["profile"] is None


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
