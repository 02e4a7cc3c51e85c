"""ScienceLab's Kubernetes spawner end to end: a real hub with `KubeProfileSpawner` on the test
cluster; the users' pods run on its node (the kubelet applies their security context, mounts their
home claim, CVMFS, group folder and Secrets, and reports them ready), JupyterLab is reached through
the hub's proxy."""

import base64
import json
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from sciencelab_spawner.kube_objects import unprivileged_problems

from ..option_oracle import expected_status
from ..rest_spawn_fuzz import check_rest_spawn, rest_spawns
from .cluster import NODE_NAME, exec_in_pod
from .hub import KEEP_SERVICE_ACCOUNT_TOKENS, KubeHub, remove_namespace_objects, wait_for
from .schema import validate_strictly

pytestmark = [pytest.mark.k8s, pytest.mark.hub]

PROFILES = Path(__file__).with_name("kube_profiles.yaml")
A100 = "NVIDIA-A100-SXM4-80GB"
# The node as a GPU node: four whole A100s, and one 1g.10gb slice to race for.
NODE_LABELS = {"nvidia.com/gpu.product": A100}
NODE_RESOURCES = {"nvidia.com/gpu": "4", "nvidia.com/mig-1g.10gb": "1"}
NS = "/api/v1/namespaces/sciencelab"
# What the admin provisioned for alice (s3_credentials_source "secret"); bob has nothing.
ALICE_KEYS = {"accessKeyID": "AKIAALICEEXAMPLE", "secretAccessKey": "alice-secret-9f3c1e7d2b"}
CVMFS_REPOSITORIES = ("cms.cern.ch", "sft.cern.ch")
GROUP_FOLDER_CLASS = "shared-folders"
SCIENCELAB_VOLUMES = "sciencelab.io/namespace=sciencelab"  # the S3 buckets' volumes the spawner makes


def make_stand_in_volumes(folder: Path) -> list[dict]:
    """Pre-made host-path volumes for the claims the host-path provisioner cannot serve (it makes
    ReadWriteOnce volumes only): the cvmfs-csi `cvmfs` class's ReadOnlyMany claim, a folder per
    repository in it, and the group folders' ReadWriteMany claim, writable by everyone."""
    for repository in CVMFS_REPOSITORIES:
        (folder / "cvmfs" / repository).mkdir(parents=True)
        (folder / "cvmfs" / repository / "README").write_text(f"{repository} stand-in\n")
    (folder / "groups").mkdir()
    (folder / "groups").chmod(0o777)
    return [
        {
            "metadata": {"name": name},
            "spec": {
                "storageClassName": storage_class,
                "accessModes": [access],
                "capacity": {"storage": "50Gi"},
                "hostPath": {"path": str(folder / name), "type": "Directory"},
            },
        }
        for name, storage_class, access in (
            ("cvmfs", "cvmfs", "ReadOnlyMany"),
            ("groups", GROUP_FOLDER_CLASS, "ReadWriteMany"),
        )
    ]


def make_hub(cluster, folder: Path, extra_config: str = "") -> KubeHub:
    """A hub with kube_profiles.yaml and group folders for gpu-users, on the lab image."""
    return KubeHub(
        folder,
        cluster.credentials,
        PROFILES.read_text(),
        cluster.import_lab_image(),
        extra_config=(
            'c.KubeProfileSpawner.group_folders = ["gpu-users"]\n'
            f'c.KubeProfileSpawner.group_folder_storage_class = "{GROUP_FOLDER_CLASS}"\n{extra_config}'
        ),
    )


@pytest.fixture(scope="module")
def kube_hub(shared_kube_cluster, tmp_path_factory):
    """The demo hub on `KubeProfileSpawner` (tests/k8s/hub.py, `make_hub`) with alice's S3 Secret,
    buckets reached through the credentials file only (`s3_mount` "credentials-file": no S3 CSI
    driver here); the node advertised as NODE_RESOURCES of A100s, the profiles' images tags of the
    lab image (`KubeCluster.import_lab_image`), the stand-in volumes of `make_stand_in_volumes`.
    Afterwards the last test fails if the hub logged a traceback, the hub is stopped, and
    everything it and the fixture made is deleted."""
    cluster = shared_kube_cluster.get()
    credentials = cluster.credentials
    profile_images = [image["image"] for image in yaml.safe_load(PROFILES.read_text())["images"].values()]
    cluster.tag_image(cluster.import_lab_image(), *profile_images)
    folder = tmp_path_factory.mktemp("stand-in-volumes")
    volumes = make_stand_in_volumes(folder)
    hub = make_hub(cluster, tmp_path_factory.mktemp("kube-hub"), 'c.KubeProfileSpawner.s3_mount = "credentials-file"\n')
    hub.stand_in_folder = folder
    try:
        cluster.advertise(NODE_LABELS, NODE_RESOURCES)
        for volume in volumes:
            hub.admin_api.post(
                f"{credentials.url}/api/v1/persistentvolumes", json=volume, timeout=30
            ).raise_for_status()
        hub.admin_api.post(
            f"{credentials.url}{NS}/secrets",
            timeout=30,
            json={"metadata": {"name": "sciencelab-s3-alice"}, "stringData": ALICE_KEYS},
        ).raise_for_status()
        hub.start()
        yield hub
        hub.check_log()
    finally:
        hub.stop()
        remove_namespace_objects(credentials)
        for volume in volumes:
            hub.admin_api.delete(f"{credentials.url}/api/v1/persistentvolumes/{volume['metadata']['name']}", timeout=30)
        cluster.advertise(dict.fromkeys(NODE_LABELS), dict.fromkeys(NODE_RESOURCES))
        print(f"kube hub log: {hub.log_path}")


@pytest.fixture
def csi_hub(kube_hub, shared_kube_cluster, tmp_path):
    """A second hub beside the module's, with S3 buckets mounted through the CSI driver (the
    default `s3_mount`); stopped after the test."""
    hub = make_hub(shared_kube_cluster.get(), tmp_path / "csi-hub")
    try:
        hub.start()
        yield hub
        hub.check_log()
    finally:
        hub.stop()
        print(f"CSI hub log: {hub.log_path}")


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


def secret_names(hub) -> set[str]:
    """The namespace's Secrets but its service-account token."""
    return names(hub.kube(f"{NS}/secrets", fieldSelector=KEEP_SERVICE_ACCOUNT_TOKENS))


def test_alice_runs_on_the_node_as_uid_1000_with_her_gpu_home_cvmfs_group_folder_and_s3_keys(hub, kube_apiserver):
    options = {"profile": "a100", "gpu_count": 1, "cvmfs": ["sft.cern.ch", "cms.cern.ch"], "s3": ["scratch"]}
    response = hub.spawn("alice", options)
    assert response.status_code in (201, 202), response.text

    sent = hub.sent_pod("jupyter-alice")
    validate_strictly(sent)
    assert unprivileged_problems(sent) == []
    pod = hub.kube(f"{NS}/pods/jupyter-alice")
    assert pod["spec"]["nodeName"] == NODE_NAME
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
    assert volumes["group-0"]["persistentVolumeClaim"] == {"claimName": "sciencelab-group-gpu-users"}
    assert volumes["s3-credentials"]["secret"] == {"secretName": "jupyter-alice-s3", "defaultMode": 0o440}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/cvmfs/cms.cern.ch"]["subPath"] == "cms.cern.ch"
    assert mounts["/cvmfs/sft.cern.ch"]["mountPropagation"] == "HostToContainer"
    assert {"/home/jovyan", "/srv/groups/gpu-users", "/etc/sciencelab/s3"} <= set(mounts)
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert env["SCIENCELAB_SITE"] == "{test site}"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/sciencelab/s3/credentials"
    # Her keys and the server's API token are in Secrets only: not in the pod, not in the hub's log.
    token = decoded(hub.kube(f"{NS}/secrets/jupyter-alice-hub-token"))["JUPYTERHUB_API_TOKEN"]
    for secret in (token, ALICE_KEYS["secretAccessKey"]):
        assert secret not in json.dumps(pod) and secret not in hub.log_text()
    assert by_name(container["env"])["JUPYTERHUB_API_TOKEN"] == {
        "name": "JUPYTERHUB_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "jupyter-alice-hub-token", "key": "JUPYTERHUB_API_TOKEN"}},
    }

    # What the kubelet and runc made of it, seen from inside her container.
    def run(*command):
        return exec_in_pod(kube_apiserver, "jupyter-alice", list(command))

    assert run("id") == "uid=1000(jovyan) gid=100(users) groups=100(users)\n"
    assert run("grep", "-E", "^(CapEff|NoNewPrivs|Seccomp):", "/proc/self/status") == (
        "CapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
    )
    assert f"JUPYTERHUB_API_TOKEN={token}" in run("env").splitlines()
    # The Secret's files: read-only, hers through the fsGroup.
    assert run("cat", "/etc/sciencelab/s3/credentials") == (
        "[default]\naws_access_key_id = AKIAALICEEXAMPLE\naws_secret_access_key = alice-secret-9f3c1e7d2b\n"
    )
    assert run("stat", "-L", "-c", "%a %u:%g", "/etc/sciencelab/s3/credentials") == "440 0:100\n"
    assert run("cat", "/cvmfs/cms.cern.ch/README", "/cvmfs/sft.cern.ch/README") == (
        "cms.cern.ch stand-in\nsft.cern.ch stand-in\n"
    )
    assert "Read-only file system" in run("touch", "/cvmfs/cms.cern.ch/mine")
    assert run("sh", "-c", "echo kept > $HOME/notes && echo hello > /srv/groups/gpu-users/from-alice && echo ok") == (
        "ok\n"
    )
    assert (hub.stand_in_folder / "groups" / "from-alice").read_text() == "hello\n"

    # Her lab answers through the hub's proxy, with her profile.
    info = hub.request("GET", "/user/alice/sciencelab/api/info", "alice")
    assert info.status_code == 200, info.text
    profile = info.json()["profile"]
    assert (profile["slug"], profile["gpu"]["count"]) == ("a100", 1)
    assert [repository["path"] for repository in profile["cvmfs"]] == ["/cvmfs/cms.cern.ch", "/cvmfs/sft.cern.ch"]
    assert hub.request("GET", "/user/alice/lab", "alice").status_code == 200

    hub.stop_server("alice")
    assert hub.kube(f"{NS}/pods/jupyter-alice") is None
    assert secret_names(hub) == {"sciencelab-s3-alice"}
    # Her home, the CVMFS claim and the group folder are persistent by design: her notes are back.
    assert names(hub.kube(f"{NS}/persistentvolumeclaims")) == {
        "claim-alice",
        "sciencelab-cvmfs",
        "sciencelab-group-gpu-users",
    }
    response = hub.spawn("alice", {"profile": "cpu"})
    assert response.status_code in (201, 202), response.text
    assert run("cat", "/home/jovyan/notes") == "kept\n"


def test_s3_buckets_become_csi_volumes_with_her_keys_in_secrets_and_go_with_her_server(csi_hub):
    """The buckets' CSI driver is not on the test node, so the pod waits for it: what is checked
    here is what the spawner makes, and removes when the server stops."""
    options = {"profile": "a100", "gpu_count": 1, "s3": ["cms-opendata", "scratch"]}
    response = csi_hub.request("POST", "/hub/api/users/alice/server", "alice", json=options)
    assert response.status_code == 202, response.text
    pod = wait_for(lambda: csi_hub.kube(f"{NS}/pods/jupyter-alice"), 60, "her pod")
    container = pod["spec"]["containers"][0]
    volumes = by_name(pod["spec"]["volumes"])
    assert volumes["s3-credentials"]["secret"]["secretName"] == "jupyter-alice-s3"
    assert volumes["s3-0"]["persistentVolumeClaim"] == {"claimName": "jupyter-alice-s3-cms-opendata", "readOnly": True}
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/s3/cms-opendata"]["readOnly"] is True
    assert {"/s3/scratch", "/etc/sciencelab/s3"} <= set(mounts)
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/sciencelab/s3/credentials"
    # The keys are in Secrets only: not in the pod, not in the hub's log.
    assert ALICE_KEYS["secretAccessKey"] not in json.dumps(pod)
    assert ALICE_KEYS["secretAccessKey"] not in csi_hub.log_text()
    credentials = decoded(csi_hub.kube(f"{NS}/secrets/jupyter-alice-s3"))
    assert credentials == {
        "credentials": "[default]\naws_access_key_id = AKIAALICEEXAMPLE\n"
        "aws_secret_access_key = alice-secret-9f3c1e7d2b\n",
        "config": "[default]\nendpoint_url = https://s3.cern.ch\n",
    }
    assert decoded(csi_hub.kube(f"{NS}/secrets/jupyter-alice-s3-scratch")) == {
        **ALICE_KEYS,
        "endpoint": "https://s3.cern.ch",
    }
    volume = csi_hub.kube("/api/v1/persistentvolumes/sciencelab-jupyter-alice-s3-scratch")
    assert (volume["spec"]["csi"]["driver"], volume["spec"]["csi"]["volumeHandle"]) == (
        "ru.yandex.s3.csi",
        "sciencelab-scratch",
    )
    assert volume["spec"]["claimRef"]["name"] == "jupyter-alice-s3-scratch"
    assert {"jupyter-alice-s3-cms-opendata", "jupyter-alice-s3-scratch"} <= names(
        csi_hub.kube(f"{NS}/persistentvolumeclaims")
    )

    csi_hub.stop_server("alice")
    assert csi_hub.kube(f"{NS}/pods/jupyter-alice") is None
    assert secret_names(csi_hub) == {"sciencelab-s3-alice"}
    assert not names(csi_hub.kube(f"{NS}/persistentvolumeclaims")) & {
        "jupyter-alice-s3-cms-opendata",
        "jupyter-alice-s3-scratch",
    }
    wait_for(
        lambda: not names(csi_hub.kube("/api/v1/persistentvolumes", labelSelector=SCIENCELAB_VOLUMES)),
        30,
        "her buckets' volumes deleted",
    )


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


# Fewer than the demo hub's fuzz: each accepted spawn here is a pod on the node (about 8 s with its stop).
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(rest_spawns(RAW, GROUPS, valid_one_in=16))
def test_rest_spawns_agree_with_the_oracle(kube_hub, spawn):
    user, options = spawn
    expected = expected_status(options, GROUPS[user], RAW)
    if expected == 200 and user == "bob" and options.get("s3"):
        expected = 403  # bob has no S3 credentials
    if check_rest_spawn(kube_hub, user, options, expected) not in (201, 202):
        assert kube_hub.kube(f"{NS}/pods/jupyter-{user}") is None


# A stand-in for SciencelabOIDCAuthenticator's tokens without a provider: the demo's password login keeps an
# access token in the auth state, renews it at every refresh and hands it to the user's running servers
# with the same function (`server_token.offer_server_token`).
TOKEN_LOGIN_CONFIG = """
import itertools

from jupyterhub.authenticators.shared import SharedPasswordAuthenticator

from sciencelab_spawner.server_token import offer_server_token

RENEWALS = itertools.count(1)


class TokenKeepingAuthenticator(SharedPasswordAuthenticator):
    server_token = "access_token"

    async def authenticate(self, handler, data):
        model = await super().authenticate(handler, data)
        if model is None:
            return None
        name = model if isinstance(model, str) else model["name"]
        return {"name": name, "auth_state": {"access_token": f"access-token-of-{name}-0"}}

    async def refresh_user(self, user, handler=None, **kwargs):
        token = f"access-token-of-{user.name}-{next(RENEWALS)}"
        await offer_server_token(user, token, self.log)
        return {"name": user.name, "auth_state": {"access_token": token}}


c.JupyterHub.authenticator_class = TokenKeepingAuthenticator
c.Authenticator.enable_auth_state = True
c.Authenticator.auth_refresh_age = 1
c.Authenticator.refresh_pre_spawn = True
"""


# The kubelet copies a changed Secret into running pods at its next sync of the pod (every minute).
KUBELET_SYNC_WAIT = 150


@pytest.fixture
def token_hub(kube_hub, shared_kube_cluster, tmp_path):
    """A second hub beside the module's whose login keeps a renewed access token (TOKEN_LOGIN_CONFIG)."""
    hub = make_hub(shared_kube_cluster.get(), tmp_path / "token-hub", TOKEN_LOGIN_CONFIG)
    hub.env["JUPYTERHUB_CRYPT_KEY"] = secrets.token_hex(32)
    try:
        hub.start()
        yield hub
        hub.stop_server("alice")
        hub.check_log()
    finally:
        hub.stop()
        print(f"token hub log: {hub.log_path}")


def test_the_users_token_reaches_her_pod_as_a_file_of_a_secret_the_hub_replaces_when_it_is_renewed(
    token_hub, kube_apiserver
):
    def renewal(token: str) -> int:
        assert re.fullmatch(r"access-token-of-alice-\d+", token), token
        return int(token.rsplit("-", 1)[1])

    def token_in_secret() -> str:
        return decoded(token_hub.kube(f"{NS}/secrets/jupyter-alice-identity-token"))["token"]

    def token_in_pod() -> str:
        return exec_in_pod(kube_apiserver, "jupyter-alice", ["sh", "-c", 'cat "$SCIENCELAB_TOKEN_FILE"'])

    assert token_hub.spawn("alice", {"profile": "cpu"}).status_code in (201, 202)
    pod = token_hub.sent_pod("jupyter-alice")
    assert {"name": "identity-token", "mountPath": "/var/run/secrets/sciencelab/identity", "readOnly": True} in (
        pod["spec"]["containers"][0]["volumeMounts"]
    )
    environment = {entry["name"]: entry.get("value") for entry in pod["spec"]["containers"][0]["env"]}
    assert environment["SCIENCELAB_TOKEN_FILE"] == "/var/run/secrets/sciencelab/identity/token"
    assert not [name for name, value in environment.items() if value and "access-token-of" in value]
    # The pod reads a token of hers from its Secret's file (the Secret may already hold a later renewal:
    # the kubelet copies it into the pod at its next sync).
    assert renewal(token_in_pod()) <= renewal(token_in_secret())

    # Her next request after auth_refresh_age renews it: the hub replaces the Secret, and the kubelet then
    # updates the file in the running pod.
    before = renewal(token_in_secret())
    time.sleep(1.5)
    assert token_hub.request("GET", "/hub/api/user", "alice").status_code == 200
    renewed = token_in_secret()
    assert renewal(renewed) > before
    started = time.monotonic()
    wait_for(lambda: token_in_pod() == renewed, KUBELET_SYNC_WAIT, "the renewed token in the pod's file")
    print(f"the kubelet updated the token file {time.monotonic() - started:.1f} s after the Secret")
    token_hub.stop_server("alice")
    assert token_hub.kube(f"{NS}/secrets/jupyter-alice-identity-token") is None
