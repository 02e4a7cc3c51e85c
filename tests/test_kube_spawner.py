"""KubeProfileSpawner without a cluster: the pod it would send for each profile, the environment
it hands over word for word, what it restores between spawns, and what it refuses to send.

The spawner's Kubernetes client is configured for an API server that does not exist; nothing here
reaches it (tests/k8s/ runs the spawner against a real one).
"""

import asyncio
import json
import os
import re
from types import SimpleNamespace

import pytest
import yaml
from jupyterhub.spawner import SpawnException
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import kube_config
from kubespawner.clients import load_config
from traitlets.config import Config

from sciencelab_spawner.hub_config import configure_sciencelab
from sciencelab_spawner.kube import KubeProfileSpawner
from sciencelab_spawner.kube_objects import unprivileged_problems
from sciencelab_spawner.share_watch import ACCESS_KEY_ENV, access_key_for, make_access_key
from sciencelab_spawner.user_options import resolve_user_options

from .k8s.schema import validate_strictly
from .profile_examples import EXAMPLE_FILE, REPO

GIB = 1024**3


@pytest.fixture
def offline_kube_client(tmp_path, monkeypatch, jp_asyncio_loop):
    """KubeSpawner's shared client configured (as `load_config` does, from a kubeconfig) for a
    server on a closed port; afterwards the client's tasks on the test's loop are ended and the
    process-wide configuration is put back."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "offline",
                "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "nobody", "user": {"token": "not-a-token"}}],
                "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "nobody"}}],
            }
        )
    )
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    previous = Configuration.get_default_copy()
    load_config.cache_clear()
    yield
    tasks = asyncio.all_tasks(jp_asyncio_loop)
    for task in tasks:
        task.cancel()
    jp_asyncio_loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    load_config.cache_clear()
    Configuration.set_default(previous)


def make_spawner(groups=(), **config) -> KubeProfileSpawner:
    user = SimpleNamespace(
        name="alice", id=1, url="/user/alice/", groups=[SimpleNamespace(name=g) for g in groups], spawners={}
    )
    config.setdefault("profiles_file", str(EXAMPLE_FILE))
    spawner = KubeProfileSpawner(_mock=True, user=user, namespace="sciencelab", cmd=["jupyterhub-singleuser"], **config)
    user.spawners[""] = spawner
    return spawner


async def pod_for(spawner: KubeProfileSpawner, options: dict) -> dict:
    """The pod manifest of a spawn with `options`, as the spawner would send it."""
    spawner.clear_state()
    resolved = resolve_user_options(spawner.profile_config, options, spawner.user_groups)
    spawner.sciencelab_profile = resolved
    spawner.apply_profile(resolved, ())
    return spawner.api.api_client.sanitize_for_serialization(await spawner.get_pod_manifest())


def env_of(pod: dict) -> dict[str, str]:
    return {variable["name"]: variable.get("value") for variable in pod["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(
    "options",
    [
        {
            "profile": "cpu",
            "image": "root",
            "size": "large",
            "cvmfs": ["cms.cern.ch", "sft.cern.ch"],
            "s3": ["cms-opendata", "scratch"],
        },
        {"profile": "a100", "gpu_count": 2},
        {"profile": "mig"},
        {"profile": "collab", "collaborative": True},
    ],
)
async def test_every_profile_makes_a_valid_unprivileged_pod(offline_kube_client, options):
    spawner = make_spawner(groups=["gpu-users"])
    pod = await pod_for(spawner, options)
    validate_strictly(pod)
    assert unprivileged_problems(pod) == []
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["metadata"]["labels"]["sciencelab.io/profile"] == options["profile"]
    record = json.loads(env_of(pod)["SCIENCELAB_PROFILE"])
    assert record["slug"] == options["profile"]


async def test_resources_image_and_environment_of_a_gpu_profile(offline_kube_client):
    pod = await pod_for(make_spawner(groups=["gpu-users"]), {"profile": "a100", "gpu_count": 2})
    container = pod["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/sciencelab/user-root:2026.11"
    assert container["resources"] == {
        "limits": {"cpu": 8.0, "memory": 32 * GIB, "nvidia.com/gpu": "2"},
        "requests": {"cpu": 4.0, "memory": 16 * GIB},
    }
    assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]}
                ]
            }
        ]
    }
    assert pod["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    env = env_of(pod)
    assert (env["CPU_LIMIT"], env["MEM_LIMIT"]) == ("8.0", str(32 * GIB))
    assert "NVIDIA_VISIBLE_DEVICES" not in env
    # The API token is read from the server's Secret.
    token = next(variable for variable in container["env"] if variable["name"] == "JUPYTERHUB_API_TOKEN")
    assert token == {
        "name": "JUPYTERHUB_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "jupyter-alice-hub-token", "key": "JUPYTERHUB_API_TOKEN"}},
    }


async def test_profile_environment_is_passed_word_for_word(offline_kube_client, tmp_path):
    # KubeSpawner formats its `environment` with the user's name; a profile's values stay literal.
    profiles = yaml.safe_load(EXAMPLE_FILE.read_text())
    profiles["profiles"][3]["environment"] = {"GREETING": "{username} {not a field}"}
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(profiles))
    spawner = make_spawner(profiles_file=str(path), environment={"OWNER": "{username}"})
    env = env_of(await pod_for(spawner, {"profile": "collab"}))
    assert env["GREETING"] == "{username} {not a field}"
    assert env["OWNER"] == "alice"
    assert env["NVIDIA_VISIBLE_DEVICES"] == "none"


async def test_the_next_spawn_starts_from_the_admins_settings(offline_kube_client):
    spawner = make_spawner(groups=["gpu-users"], node_selector={"disk": "ssd"})
    await pod_for(spawner, {"profile": "a100"})
    pod = await pod_for(spawner, {"profile": "cpu", "s3": ["scratch"]})
    spec = pod["spec"]
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    assert "affinity" not in spec and "tolerations" not in spec
    assert spec["nodeSelector"] == {"disk": "ssd"}
    assert [volume["name"] for volume in spec["volumes"]] == ["home", "cvmfs", "s3-credentials", "s3-0"]
    assert env_of(pod)["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/sciencelab/s3/credentials"
    spawner.clear_state()
    bare = spawner.api.api_client.sanitize_for_serialization(await spawner.get_pod_manifest())
    assert [volume["name"] for volume in bare["spec"]["volumes"]] == ["home"]
    assert "sciencelab.io/profile" not in bare["metadata"]["labels"]
    assert "AWS_SHARED_CREDENTIALS_FILE" not in env_of(bare)


OFFLOAD_GUIDE = REPO / "docs" / "hpc-offload.md"
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)


def offload_guide_blocks() -> tuple[str, dict]:
    """The offload guide's profile file (text) and its pod manifest (parsed)."""
    blocks = YAML_BLOCK.findall(OFFLOAD_GUIDE.read_text())
    (profiles,) = [block for block in blocks if re.search(r"^profiles:", block, re.M)]
    (pod,) = [yaml.safe_load(block) for block in blocks if re.search(r"^kind: Pod$", block, re.M)]
    return profiles, pod


def offload_excerpt(pod: dict) -> dict:
    """What an offload changes in a pod, as the offload guide shows it."""
    container = pod["spec"]["containers"][0]
    return {
        "apiVersion": pod["apiVersion"],
        "kind": pod["kind"],
        "metadata": {
            "name": pod["metadata"]["name"],
            # KubeSpawner's own version annotations change with every upgrade.
            "annotations": {
                key: value for key, value in pod["metadata"]["annotations"].items() if not key.endswith("-version")
            },
        },
        "spec": {
            "nodeSelector": pod["spec"]["nodeSelector"],
            "tolerations": pod["spec"]["tolerations"],
            "containers": [{key: container[key] for key in ("name", "image", "ports", "resources", "volumeMounts")}],
            "volumes": pod["spec"]["volumes"],
        },
    }


async def test_an_offloaded_pod_and_the_offload_guide_shows_it(offline_kube_client, tmp_path):
    profiles, shown = offload_guide_blocks()
    path = tmp_path / "profiles.yaml"
    path.write_text(profiles)
    spawner = make_spawner(groups=["hpc-users"], profiles_file=str(path), node_selector={"pool": "users"})
    pod = await pod_for(spawner, {"profile": "hpc-a100"})
    validate_strictly(pod)
    assert unprivileged_problems(pod) == []
    assert "affinity" not in pod["spec"]
    assert spawner.storage_pvc_ensure is False
    record = json.loads(env_of(pod)["SCIENCELAB_PROFILE"])
    assert record["resources"] == {
        "cpu_guarantee": 8.0,
        "cpu_limit": 8.0,
        "mem_guarantee": 64 * GIB,
        "mem_limit": 64 * GIB,
    }
    assert "NVIDIA_VISIBLE_DEVICES" not in env_of(pod)
    excerpt = offload_excerpt(pod)
    assert shown == excerpt, "docs/hpc-offload.md shows another pod; it should show:\n" + yaml.safe_dump(
        excerpt, sort_keys=False
    )
    # The next spawn of the same spawner is back on the cluster's nodes, with its home claim.
    pod = await pod_for(spawner, {"profile": "cpu"})
    assert (pod["spec"]["nodeSelector"], spawner.storage_pvc_ensure) == ({"pool": "users"}, True)
    assert [volume["name"] for volume in pod["spec"]["volumes"]] == ["home"]
    assert "slurm-job.vk.io/flags" not in (pod["metadata"].get("annotations") or {})


async def test_a_privileged_configuration_is_refused_before_the_pod_is_sent(offline_kube_client):
    spawner = make_spawner(
        extra_pod_config={"hostNetwork": True},
        extra_containers=[{"name": "sidecar", "image": "busybox", "securityContext": {"privileged": True}}],
    )
    await pod_for(spawner, {"profile": "cpu"})
    # KubeSpawner calls the hook last, on the pod it is about to send.
    pod = await spawner.get_pod_manifest()
    with pytest.raises(SpawnException) as error:
        await spawner.modify_pod_hook(spawner, pod)
    assert error.value.message == (
        "This hub's settings would give the server privileges, so it is not started; tell your hub admin: "
        "spec.hostNetwork is true; spec.containers[1] (sidecar) is privileged; "
        "spec.containers[1] (sidecar) may escalate privileges; "
        "spec.containers[1] (sidecar) does not drop all capabilities"
    )


async def test_the_admins_pod_hook_runs_first_and_the_pod_it_returns_is_checked(offline_kube_client):
    def label_site(spawner, pod):
        pod.metadata.labels["site"] = "cern"
        return pod

    async def share_the_host_network(spawner, pod):
        pod.spec.host_network = True
        return pod

    spawner = make_spawner(modify_pod_hook=label_site)
    await pod_for(spawner, {"profile": "cpu"})
    pod = await spawner.modify_pod_hook(spawner, await spawner.get_pod_manifest())
    assert pod.metadata.labels["site"] == "cern"

    spawner.modify_pod_hook = share_the_host_network
    with pytest.raises(SpawnException) as error:
        await spawner.modify_pod_hook(spawner, await spawner.get_pod_manifest())
    assert error.value.message.endswith("tell your hub admin: spec.hostNetwork is true")


async def test_s3_credentials_from_the_login(offline_kube_client):
    spawner = make_spawner(s3_credentials_source="auth_state")
    spawner.sciencelab_profile = resolve_user_options(spawner.profile_config, {"profile": "cpu", "s3": ["scratch"]}, [])
    await spawner.run_auth_state_hook({"s3_credentials": {"access_key_id": "AK", "secret_access_key": "SK"}})
    credentials = await spawner._read_s3_credentials()
    assert (credentials.access_key_id, credentials.secret_access_key) == ("AK", "SK")

    await spawner.run_auth_state_hook({"other": 1})
    with pytest.raises(SpawnException) as error:
        await spawner._read_s3_credentials()
    assert error.value.status_code == 403
    assert error.value.message == (
        "s3: ['scratch'] cannot be attached: your login carries no S3 credentials (auth state key "
        "'s3_credentials'); log out and in again, or ask your hub admin"
    )


def test_configure_sciencelab_for_kubernetes(monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/etc/sciencelab/kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    c = Config()
    configure_sciencelab(
        c, spawner="kubernetes", profiles_file=str(EXAMPLE_FILE), namespace="physics", service_port=10101
    )
    assert c.JupyterHub.spawner_class == "sciencelab-kube"
    assert c.KubeProfileSpawner.profiles_file == str(EXAMPLE_FILE)
    assert c.KubeProfileSpawner.namespace == "physics"
    (service,) = c.JupyterHub.services
    assert service["environment"] == {
        "KUBECONFIG": "/etc/sciencelab/kubeconfig",
        "SCIENCELAB_KUBE_NAMESPACE": "physics",
        "SCIENCELAB_GPU_INVENTORY": "kubernetes",
        "SCIENCELAB_PROFILES_FILE": str(EXAMPLE_FILE),
        # Session deadlines: next to the hub's working directory unless configured.
        "SCIENCELAB_SESSIONS_FILE": os.path.abspath("sciencelab-sessions.json"),
        "SCIENCELAB_SESSION_CHECK_INTERVAL": "10.0",
    }
    with pytest.raises(ValueError, match="spawner 'slurm' is not one of: local, kubernetes"):
        configure_sciencelab(Config(), spawner="slurm", profiles_file=str(EXAMPLE_FILE))


async def test_the_access_key_reaches_the_pod_from_its_secret_never_as_a_literal(offline_kube_client):
    # configure_sciencelab gives every server the key of the hub's notices of changed access (share_watch.py).
    spawner = make_spawner(environment={ACCESS_KEY_ENV: access_key_for})
    spawner.user.settings = {"cookie_secret": b"the hub's cookie secret"}
    key = make_access_key(b"the hub's cookie secret", "alice", "")
    pod = await pod_for(spawner, {"profile": "cpu"})
    variable = next(variable for variable in pod["spec"]["containers"][0]["env"] if variable["name"] == ACCESS_KEY_ENV)
    assert variable == {
        "name": ACCESS_KEY_ENV,
        "valueFrom": {"secretKeyRef": {"name": "jupyter-alice-hub-token", "key": ACCESS_KEY_ENV}},
    }
    assert key not in json.dumps(pod)
    assert spawner.slurm_server_env()[ACCESS_KEY_ENV] == key  # what goes into the Secret (and SLURM jobs)
