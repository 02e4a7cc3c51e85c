"""Dask templates behind the real demo hub: JupyterHub groups decide who sees which template."""

import pytest

pytestmark = pytest.mark.hub

# Dask configuration in the users' homes: the usual search path (`~/.config/dask`) of their servers.
DASK_CONFIG = """\
sciencelab:
  clusters:
    templates:
      everyone: {backend: local, title: Everyone}
      gpu-users-only: {backend: local, title: GPU users, groups: [gpu-users]}
"""


@pytest.mark.parametrize(("user", "templates"), [
    ("alice", ["everyone", "gpu-users-only"]),  # the demo puts alice in gpu-users
    ("bob", ["everyone"]),
])
def test_templates_follow_the_users_jupyterhub_groups(demo_hub, user, templates, request):
    request.getfixturevalue(user)  # stops the user's server after the test
    config = demo_hub.state_dir / "home" / user / ".config" / "dask" / "sciencelab.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(DASK_CONFIG)
    response = demo_hub.spawn(user, {"profile": "cpu", "size": "small"})
    assert response.status_code in (201, 202), response.text

    listed = demo_hub.request("GET", f"/user/{user}/sciencelab/api/dask/templates", user)
    assert listed.status_code == 200, listed.text
    assert [template["name"] for template in listed.json()] == templates

    refused = demo_hub.request("POST", f"/user/{user}/sciencelab/api/dask/clusters", user,
                               json={"template": "gpu-users-only", "options": {"workers": 0}})
    if "gpu-users-only" in templates:
        assert refused.status_code == 201, refused.text
        cluster = refused.json()
        assert demo_hub.request("DELETE", f"/user/{user}/sciencelab/api/dask/clusters/{cluster['id']}",
                                user).status_code == 204
    else:
        assert (refused.status_code, refused.json()["message"]) == (
            404, "template: 'gpu-users-only' is not a template you may use; choose one of: everyone")
