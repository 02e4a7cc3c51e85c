"""Real-time collaboration per profile: on, jupyter-collaboration serves its rooms; off means off, no
`/api/collaboration/` route answers and JupyterLab loads none of its extensions. The page config
function exactly, then both on the demo hub."""

import json
import re

import pytest

from sciencelab.collaboration import COLLABORATION_LAB_EXTENSIONS, make_collaboration_page_config

REPLACED = frozenset(
    {"@jupyterlab/filebrowser-extension:defaultFileBrowser", "@jupyterlab/notebook-extension:cell-executor"}
)
PAGE_CONFIG = {
    "disabledExtensions": [
        "@jupyterlab/filebrowser-extension:defaultFileBrowser",
        "@jupyterlab/notebook-extension:cell-executor",
        "@admin/chosen:plugin",
    ],
    "disableRTC": False,
    "hubUser": "alice",
}


def test_collaboration_off_disables_its_lab_extensions_and_puts_back_what_they_replace():
    assert make_collaboration_page_config(PAGE_CONFIG, False, REPLACED) == {
        "disabledExtensions": ["@admin/chosen:plugin", *COLLABORATION_LAB_EXTENSIONS],
        "disableRTC": True,
        "hubUser": "alice",
        "sciencelabCollaborative": False,
    }
    # On: jupyter-collaboration's own share link (the server's token in a URL) is off.
    assert make_collaboration_page_config(PAGE_CONFIG, True, REPLACED) == {
        **PAGE_CONFIG,
        "disabledExtensions": [*PAGE_CONFIG["disabledExtensions"], "@jupyter/collaboration-extension:shared-link"],
        "sciencelabCollaborative": True,
    }


def page_config(hub, user: str, server: str) -> dict:
    page = hub.request("GET", f"/user/{user}/{server}/lab", user)
    assert page.status_code == 200, page.text[:500]
    (data,) = re.findall(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page.text, re.S)
    return json.loads(data)


@pytest.mark.hub
def test_a_collaborative_profile_serves_rooms_and_any_other_profile_has_no_collaboration(demo_hub, alice):
    hub = demo_hub
    servers = {
        "together": {"profile": "collab", "collaborative": True},
        "alone": {"profile": "collab", "collaborative": False},
    }
    try:
        for server, options in servers.items():
            assert hub.spawn(alice, options, server).status_code in (201, 202), hub.log_tail()
        session_body = {"format": "json", "type": "notebook"}
        on = hub.request("PUT", "/user/alice/together/api/collaboration/session/shared.ipynb", alice, json=session_body)
        assert on.status_code == 201, on.text
        for method in ("PUT", "GET"):
            off = hub.request(
                method, "/user/alice/alone/api/collaboration/session/shared.ipynb", alice, json=session_body
            )
            assert off.status_code == 404, off.text

        together, alone = page_config(hub, alice, "together"), page_config(hub, alice, "alone")
        assert together["sciencelabCollaborative"] is True
        assert not set(COLLABORATION_LAB_EXTENSIONS) & set(together["disabledExtensions"])
        assert "@jupyterlab/filebrowser-extension:defaultFileBrowser" in together["disabledExtensions"]
        assert "@jupyter/collaboration-extension:shared-link" in together["disabledExtensions"]
        assert (alone["sciencelabCollaborative"], alone["disableRTC"]) == (False, True)
        assert set(COLLABORATION_LAB_EXTENSIONS) <= set(alone["disabledExtensions"])
        assert "@jupyterlab/filebrowser-extension:defaultFileBrowser" not in alone["disabledExtensions"]
    finally:
        for server in servers:
            hub.stop_server(alice, server)
