"""ScienceLab as a site deploys it: `helm install` of the chart with the images `make images` built,
on the test tier's real single-node cluster, used as a person would, then `helm uninstall`.

The hub, the proxy and alice's server run in pods from the hub, proxy and lab images (imported on
the node: nothing is pulled). Chromium logs alice in through the proxy's Service and starts her
server; the ScienceLab panel answers through the hub; a local Dask cluster in her pod computes for
her notebook's kernel. Uninstalling removes every object of the release; her home claim, which the
spawner made and the release does not own, stays, as on any site.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml
from playwright.sync_api import expect

from ..conftest import LAB_TIMEOUT_MS
from ..container_images import built_images, missing_tools
from ..helm.chart import CHART, KUBECTL, helm, tools_missing
from ..prerequisites import require
from ..server_kernel import running_kernel
from .cluster import exec_in_pod

pytestmark = [pytest.mark.k8s, pytest.mark.helm, pytest.mark.images, pytest.mark.browser]

NAMESPACE = "sciencelab-site"
RELEASE = "site"
PASSWORD = "a-test-site-password"
IMAGES = ("hub", "proxy", "lab")
# Seconds for the hub pod to be Ready, and for a user's pod (a 1.3 GB image already on the node).
READY_TIMEOUT = 300
COMPONENT = "app.kubernetes.io/component"
INSTANCE = "app.kubernetes.io/instance"


def image_values(reference: str) -> dict:
    repository, tag = reference.rsplit(":", 1)
    return {"name": repository, "tag": tag, "pullPolicy": "Never"}


def make_values(references: dict[str, str]) -> dict:
    """What a site sets, here: the images built here, a password login, one small CPU profile."""
    return {
        "hub": {
            "image": image_values(references["hub"]),
            "config": {
                "JupyterHub": {"authenticator_class": "dummy"},
                "DummyAuthenticator": {"password": PASSWORD},
                "Authenticator": {"allow_all": True},
            },
        },
        "proxy": {"chp": {"image": image_values(references["proxy"])}},
        "singleuser": {
            "image": image_values(references["lab"]),
            "profiles": {
                "profiles": [
                    {
                        "slug": "cpu",
                        "display_name": "CPU analysis",
                        "default": True,
                        "size": {"cpu_guarantee": 0.1, "cpu_limit": 2, "mem_guarantee": "512M", "mem_limit": "3G"},
                    }
                ]
            },
        },
    }


class Site:
    """The installed release: kubectl as the cluster's admin, the public URL of its proxy."""

    def __init__(self, env: dict[str, str], credentials, references: dict[str, str]):
        self.env = env
        self.credentials = credentials
        self.references = references
        self.url = ""

    def kubectl(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [str(KUBECTL), "--namespace", NAMESPACE, *args], env=self.env, capture_output=True, text=True, timeout=360
        )
        assert result.returncode == 0 or not check, result.stderr
        return result.stdout

    def objects(self, kinds: str, selector: str = "") -> list[dict]:
        args = ["get", kinds, "-o", "json"] + (["-l", selector] if selector else [])
        return json.loads(self.kubectl(*args))["items"]

    def wait_ready(self, component: str):
        self.kubectl(
            "wait", "--for=condition=Ready", "pod", "-l", f"{COMPONENT}={component}", f"--timeout={READY_TIMEOUT}s"
        )

    def request(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {token}"}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=120, **kwargs)

    def token(self, user: str) -> str:
        response = requests.post(
            f"{self.url}/hub/api/users/{user}/tokens",
            json={"auth": {"username": user, "password": PASSWORD}, "note": "tests"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["token"]

    def installed(self) -> bool:
        return RELEASE in helm("list", "--namespace", NAMESPACE, "--short", env=self.env).split()


@pytest.fixture(scope="module")
def site(shared_kube_cluster, tmp_path_factory):
    """The chart installed in NAMESPACE with the images of `make images`, hub and proxy Ready. The
    last test uninstalls it; this only cleans up what a failure left."""
    require(tools_missing())
    require(missing_tools())
    images = built_images()
    absent = [name for name in IMAGES if name not in images or not Path(images[name]["archive"]).exists()]
    require(f"no {', '.join(absent)} image: `make images` builds them" if absent else None)
    cluster = shared_kube_cluster.get()
    for name in IMAGES:
        cluster.import_image(Path(images[name]["archive"]))
    folder = tmp_path_factory.mktemp("site")
    credentials = cluster.credentials
    kubeconfig = credentials.write_kubeconfig(folder / "kubeconfig", credentials.admin_token)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(folder), "KUBECACHEDIR": str(folder / "cache")}
    site = Site(env, credentials, {name: images[name]["reference"] for name in IMAGES})
    site.kubectl("create", "namespace", NAMESPACE)
    values = folder / "values.yaml"
    values.write_text(yaml.safe_dump(make_values(site.references)))
    try:
        started = time.monotonic()
        helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--values", str(values), env=env)
        site.wait_ready("hub")
        site.wait_ready("proxy")
        print(f"helm install to a Ready hub and proxy: {time.monotonic() - started:.1f} s")
        [service] = [s for s in site.objects("services") if s["metadata"]["name"].endswith("-proxy-public")]
        site.url = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
        yield site
    finally:
        print(site.kubectl("logs", "-l", f"{COMPONENT}=hub", "--tail", "100", check=False))
        if site.installed():
            helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", env=env)
        site.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def test_alice_logs_in_and_works_in_her_pod(site, page):
    # Chromium through the proxy's Service: log in, start the one profile, the lab and its panel.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{site.url}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    started = time.monotonic()
    page.locator("form#spawn_form button[type=submit]").click(timeout=LAB_TIMEOUT_MS)
    page.wait_for_url("**/user/alice/lab**", timeout=READY_TIMEOUT * 1000)
    print(f"alice's server, from the form's Start to the lab's URL: {time.monotonic() - started:.1f} s")
    sidebar_tab = page.locator('.jp-SideBar [data-id="sciencelab-panel"]')
    sidebar_tab.wait_for(timeout=LAB_TIMEOUT_MS)
    sidebar_tab.click()
    expect(page.locator(".sciencelab-Panel .sciencelab-profile")).to_have_text("Profile: CPU analysis")

    # Her pod runs the lab image as uid 1000 under tini.
    [pod] = site.objects("pods", f"{COMPONENT}=singleuser-server")
    assert pod["spec"]["containers"][0]["image"] == site.references["lab"]
    assert exec_in_pod(site.credentials, pod["metadata"]["name"], ["sh", "-c", "id -u; cat /proc/1/comm"], NAMESPACE)\
        .split() == ["1000", "tini"]  # fmt: skip

    # A local Dask cluster in her pod, over TLS, computes for her notebook's kernel.
    token = site.token("alice")
    created = site.request(
        "POST", "/user/alice/sciencelab/api/dask/clusters", token, json={"template": "local", "options": {"workers": 1}}
    )
    assert created.status_code == 201, created.text
    cluster = created.json()
    assert cluster["scheduler_address"].startswith("tls://")
    with running_kernel(f"{site.url}/user/alice/api/kernels", token, "python3") as kernel:
        kernel.run(cluster["connect_code"])
        kernel.run("client.wait_for_workers(1, timeout=120)")
        assert kernel.run("print(sum(client.gather(client.map(lambda x: x * x, range(100)))))").strip() == "328350"
        kernel.run("client.close()")
    assert site.request("DELETE", f"/user/alice/sciencelab/api/dask/clusters/{cluster['id']}", token).status_code == 204


def test_uninstall_removes_the_release_and_keeps_the_users_home(site):
    # The hub stops alice's server on its way out as on any stop; her home claim is hers, not the release's.
    token = site.token("alice")
    assert site.request("DELETE", "/hub/api/users/alice/server", token).status_code in (202, 204)
    site.kubectl("wait", "--for=delete", "pod", "-l", f"{COMPONENT}=singleuser-server", f"--timeout={READY_TIMEOUT}s")
    claims_before = sorted(claim["metadata"]["name"] for claim in site.objects("pvc"))
    assert claims_before == ["claim-alice", f"{RELEASE}-sciencelab-hub-db"], claims_before
    helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", env=site.env)
    kinds = "deployments,services,configmaps,secrets,serviceaccounts,roles,rolebindings,networkpolicies,pods"
    left = [f"{item['kind']}/{item['metadata']['name']}" for item in site.objects(kinds, f"{INSTANCE}={RELEASE}")]
    assert left == []
    # The hub's database goes with the release; alice's home stays (its labels name the release, but
    # the spawner made it, so helm does not own it).
    claims = [claim["metadata"]["name"] for claim in site.objects("pvc")]
    assert claims == ["claim-alice"], claims
