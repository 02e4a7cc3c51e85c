"""ScienceLab's Kubernetes spawner end to end: a real hub with `KubeProfileSpawner` on the real
API server, pods run by the node agent, JupyterLab reached through the hub's proxy."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from sciencelab_spawner.kube_objects import unprivileged_problems

from ..option_oracle import expected_status
from ..rest_spawn_fuzz import check_rest_spawn, rest_spawns
from .hub import KubeHub, remove_namespace_objects, wait_for
from .node_agent import FakeNode, NodeAgent, gpu_node, local_commands
from .schema import validate_strictly

pytestmark = [pytest.mark.k8s, pytest.mark.hub]

PROFILES = Path(__file__).with_name("kube_profiles.yaml")
A100 = "NVIDIA-A100-SXM4-80GB"
# Four whole A100s, and a MIG node with a single 1g.10gb slice to race for.
NODES = (
    FakeNode("cpu-1"),
    gpu_node("gpu-a100-1", A100, gpus=4),
    gpu_node("gpu-mig-1", A100, gpus=0, **{"nvidia.com/mig-1g.10gb": "1"}),
)
NS = "/api/v1/namespaces/sciencelab"
# What the admin provisioned for alice (s3_credentials_source "secret"); bob has nothing.
ALICE_KEYS = {"accessKeyID": "AKIAALICEEXAMPLE", "secretAccessKey": "alice-secret-9f3c1e7d2b"}


@pytest.fixture(scope="module")
def kube_hub(kube_apiserver, tmp_path_factory):
    """The demo hub on `KubeProfileSpawner` (tests/k8s/hub.py) with kube_profiles.yaml, group
    folders for gpu-users, alice's S3 Secret, and a node agent for NODES; afterwards the last test
    fails if the hub logged a traceback, the hub and the agent are stopped and everything the hub
    left in the namespace is deleted."""
    agent = NodeAgent(kube_apiserver, list(NODES), tmp_path_factory.mktemp("node-agent"), commands=local_commands())
    hub = KubeHub(
        tmp_path_factory.mktemp("kube-hub"),
        kube_apiserver,
        PROFILES.read_text(),
        extra_config='c.KubeProfileSpawner.group_folders = ["gpu-users"]\n',
    )
    try:
        agent.start()
        hub.admin_api.post(
            f"{kube_apiserver.url}{NS}/secrets",
            timeout=30,
            json={"metadata": {"name": "sciencelab-s3-alice"}, "stringData": ALICE_KEYS},
        ).raise_for_status()
        hub.start()
        yield hub
        hub.check_log()
    finally:
        hub.stop()
        agent.stop()
        remove_namespace_objects(kube_apiserver)
        print(f"kube hub log: {hub.log_path}")


@pytest.fixture
def hub(kube_hub):
    """The module's hub; every server of alice and bob is stopped after the test."""
    yield kube_hub
    for user in ("alice", "bob"):
        for server in kube_hub.request("GET", f"/hub/api/users/{user}", "admin").json()["servers"]:
            kube_hub.stop_server(user, server)


def by_name(items: list[dict]) -> dict[str, dict]:
    return {item["name"]: item for item in items}


def names(listing: dict) -> set[str]:
    return {item["metadata"]["name"] for item in listing["items"]}


def decoded(secret: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_alice_gets_gpu_cvmfs_s3_and_home_and_stop_removes_what_is_hers(hub):
    options = {
        "profile": "a100",
        "gpu_count": 1,
        "cvmfs": ["sft.cern.ch", "cms.cern.ch"],
        "s3": ["cms-opendata", "scratch"],
    }
    response = hub.spawn("alice", options)
    assert response.status_code in (201, 202), response.text

    sent = hub.sent_pod("jupyter-alice")
    validate_strictly(sent)
    assert unprivileged_problems(sent) == []
    pod = hub.kube(f"{NS}/pods/jupyter-alice")
    assert pod["spec"]["nodeName"] == "gpu-a100-1"
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 100,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [A100]}]}
        ]
    }
    volumes = by_name(pod["spec"]["volumes"])
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": "claim-alice"}
    assert volumes["cvmfs"]["persistentVolumeClaim"] == {"claimName": "sciencelab-cvmfs", "readOnly": True}
    assert volumes["s3-credentials"]["secret"]["secretName"] == "jupyter-alice-s3"
    assert volumes["s3-0"]["persistentVolumeClaim"] == {"claimName": "jupyter-alice-s3-cms-opendata", "readOnly": True}
    assert volumes["group-0"]["persistentVolumeClaim"] == {"claimName": "sciencelab-group-gpu-users"}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/cvmfs/cms.cern.ch"]["subPath"] == "cms.cern.ch"
    assert mounts["/cvmfs/sft.cern.ch"]["mountPropagation"] == "HostToContainer"
    assert mounts["/s3/cms-opendata"]["readOnly"] is True
    assert {"/home/jovyan", "/s3/scratch", "/srv/groups/gpu-users", "/etc/sciencelab/s3"} <= set(mounts)
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert env["SCIENCELAB_SITE"] == "{test site}"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/sciencelab/s3/credentials"
    # The keys and the server's API token are in Secrets only: not in the pod, not in the hub's log.
    assert ALICE_KEYS["secretAccessKey"] not in json.dumps(pod)
    assert ALICE_KEYS["secretAccessKey"] not in hub.log_text()
    token = decoded(hub.kube(f"{NS}/secrets/jupyter-alice-hub-token"))["JUPYTERHUB_API_TOKEN"]
    assert token not in json.dumps(pod)
    assert by_name(container["env"])["JUPYTERHUB_API_TOKEN"] == {
        "name": "JUPYTERHUB_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "jupyter-alice-hub-token", "key": "JUPYTERHUB_API_TOKEN"}},
    }

    credentials = decoded(hub.kube(f"{NS}/secrets/jupyter-alice-s3"))
    assert credentials == {
        "credentials": "[default]\naws_access_key_id = AKIAALICEEXAMPLE\n"
        "aws_secret_access_key = alice-secret-9f3c1e7d2b\n",
        "config": "[default]\nendpoint_url = https://s3.cern.ch\n",
    }
    assert decoded(hub.kube(f"{NS}/secrets/jupyter-alice-s3-scratch")) == {
        **ALICE_KEYS,
        "endpoint": "https://s3.cern.ch",
    }
    volume = hub.kube("/api/v1/persistentvolumes/sciencelab-jupyter-alice-s3-scratch")
    assert (volume["spec"]["csi"]["driver"], volume["spec"]["csi"]["volumeHandle"]) == (
        "ru.yandex.s3.csi",
        "sciencelab-scratch",
    )
    assert volume["spec"]["claimRef"]["name"] == "jupyter-alice-s3-scratch"
    assert names(hub.kube(f"{NS}/persistentvolumeclaims")) == {
        "claim-alice",
        "sciencelab-cvmfs",
        "sciencelab-group-gpu-users",
        "jupyter-alice-s3-cms-opendata",
        "jupyter-alice-s3-scratch",
    }

    # alice's lab answers through the hub's proxy, with her profile.
    info = hub.request("GET", "/user/alice/sciencelab/api/info", "alice")
    assert info.status_code == 200, info.text
    profile = info.json()["profile"]
    assert (profile["slug"], profile["gpu"]["count"]) == ("a100", 1)
    assert [repository["path"] for repository in profile["cvmfs"]] == ["/cvmfs/cms.cern.ch", "/cvmfs/sft.cern.ch"]
    assert hub.request("GET", "/user/alice/lab", "alice").status_code == 200

    hub.stop_server("alice")
    assert hub.kube(f"{NS}/pods/jupyter-alice") is None
    assert names(hub.kube(f"{NS}/secrets")) == {"sciencelab-s3-alice"}
    # Her home, the CVMFS claim and the group folder are persistent by design.
    assert names(hub.kube(f"{NS}/persistentvolumeclaims")) == {
        "claim-alice",
        "sciencelab-cvmfs",
        "sciencelab-group-gpu-users",
    }
    assert names(hub.kube("/api/v1/persistentvolumes")) == set()


def test_form_and_profiles_api_show_live_gpu_availability_and_quotas_span_named_servers(hub):
    def availability(user):
        document = hub.request("GET", "/services/sciencelab/api/profiles", user).json()
        return {profile["slug"]: profile["gpu_availability"] for profile in document["profiles"]}

    session = hub.browser_session("alice")
    form = hub.spawn_form(session, "alice")
    assert "4 of 4 NVIDIA A100 80 GB free" in form and "1 of 1 A100 slice (MIG 1g.10gb) free" in form
    assert availability("alice")["a100"] == {"a100": {"free": 4, "total": 4}}

    response = hub.spawn("alice", {"profile": "a100", "gpu_count": 2})
    assert response.status_code in (201, 202), response.text
    assert "2 of 4 NVIDIA A100 80 GB free" in hub.spawn_form(session, "alice", "second")
    wait_for(
        lambda: (
            availability("bob")["mig"] == {"a100-1g.10gb": {"free": 1, "total": 1}}
            and availability("alice")["a100"] == {"a100": {"free": 2, "total": 4}}
        ),
        what="the service's inventory",
    )

    refused = hub.spawn("alice", {"profile": "mig"}, server="second")
    assert (refused.status_code, refused.json()["message"]) == (
        403,
        "gpu_count: 1 would exceed your GPU quota; you may hold at most 2 GPUs and hold 2 (servers: "
        "'default'); ask for at most 0 or stop a server first",
    )
    assert hub.kube(f"{NS}/pods/jupyter-alice--second") is None


def test_two_users_racing_for_the_last_gpu_get_one_pod_and_one_clear_refusal(hub):
    for user in ("alice", "bob"):
        hub.token(user)  # so both requests leave together
    with ThreadPoolExecutor(2) as pool:
        answers = dict(
            zip(
                ("alice", "bob"),
                pool.map(
                    lambda user: hub.request("POST", f"/hub/api/users/{user}/server", user, json={"profile": "mig"}),
                    ("alice", "bob"),
                ),
                strict=True,
            )
        )
    statuses = sorted(answer.status_code for answer in answers.values())
    assert statuses[0] in (201, 202) and statuses[1] == 409, {u: a.text for u, a in answers.items()}
    [loser] = [answer for answer in answers.values() if answer.status_code == 409]
    assert loser.json()["message"] == (
        "gpu_count: 1 is more than is free; 0 of 1 A100 slice (MIG 1g.10gb) free in the cluster; ask for at "
        "most 0 or try again when a GPU is released"
    )
    pods = hub.kube(f"{NS}/pods", labelSelector="sciencelab.io/gpu-model=a100-1g.10gb")["items"]
    assert len(pods) == 1
    [winner] = [user for user, answer in answers.items() if answer.status_code in (201, 202)]
    hub.wait_until_ready(winner)
    assert hub.request("GET", f"/user/{winner}/api/status", winner).status_code == 200


@pytest.mark.parametrize(
    "options, status, message",
    [
        ({"profile": "a100"}, 403, "profile: 'a100' is only for members of gpu-users; choose one of: cpu, mig"),
        (
            {"profile": "cpu", "size": "large"},
            403,
            "size: 'large' is only for members of gpu-users; choose one of: small",
        ),
        (
            {"profile": "cpu", "image": "ghcr.io/evil/miner:latest"},
            400,
            "image: 'ghcr.io/evil/miner:latest' is not allowed; choose one of: python, root",
        ),
        (
            {"profile": "cpu", "node_selector": {"kubernetes.io/hostname": "gpu-a100-1"}},
            400,
            "node_selector: {'kubernetes.io/hostname': 'gpu-a100-1'} is not an option of this profile; options of "
            "profile 'cpu': image, size, cvmfs, s3",
        ),
        (
            {"profile": "mig", "gpu_count": 2},
            400,
            "gpu_count: 2 is not an option of this profile; options of profile 'mig': "
            "(none: everything is fixed by the admin)",
        ),
        (
            {"profile": "cpu", "cvmfs": ["../../etc"]},
            400,
            "cvmfs[0]: '../../etc' is not allowed; choose any of: cms.cern.ch, sft.cern.ch, each at most once",
        ),
        (
            {"profile": "cpu", "s3": ["scratch"]},
            403,
            "s3: ['scratch'] cannot be attached: there is no S3 credentials Secret 'sciencelab-s3-bob' for you yet; "
            "ask your hub admin",
        ),
    ],
)
def test_bob_cannot_craft_his_way_to_a_pod(hub, options, status, message):
    response = hub.spawn("bob", options)
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert hub.server_model("bob") is None
    assert hub.kube(f"{NS}/pods/jupyter-bob") is None
    assert names(hub.kube(f"{NS}/secrets", labelSelector="sciencelab.io/server=jupyter-bob")) == set()
    assert hub.kube(f"{NS}/secrets/jupyter-bob-hub-token") is None


def test_options_refused_for_missing_credentials_are_not_reused(hub):
    assert hub.spawn("bob", {"profile": "cpu", "image": "root", "s3": ["scratch"]}).status_code == 403
    # The admin page's Start button sends no options: the last accepted ones, not the refused.
    response = hub.spawn("bob", None, as_user="admin")
    assert response.status_code in (201, 202), response.text
    pod = hub.kube(f"{NS}/pods/jupyter-bob")
    assert pod["spec"]["containers"][0]["image"] == "ghcr.io/sciencelab/user-python:2026.11"
    assert "s3-credentials" not in by_name(pod["spec"]["volumes"])


RAW = yaml.safe_load(PROFILES.read_text())
GROUPS = {"alice": ["gpu-users"], "bob": []}


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(rest_spawns(RAW, GROUPS, valid_one_in=16))
def test_rest_spawns_agree_with_the_oracle(kube_hub, spawn):
    user, options = spawn
    expected = expected_status(options, GROUPS[user], RAW)
    if expected == 200 and user == "bob" and options.get("s3"):
        expected = 403  # bob has no S3 credentials
    if check_rest_spawn(kube_hub, user, options, expected) not in (201, 202):
        assert kube_hub.kube(f"{NS}/pods/jupyter-{user}") is None
