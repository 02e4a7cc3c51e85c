"""Exact output of `kube_objects`: pod settings for every option kind, the server's and the shared
objects, credentials, and the unprivileged check. Every manifest is checked against the official
Kubernetes schema. No cluster."""

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sciencelab_spawner.kube_objects import (
    KubeSite,
    PodSettings,
    S3Credentials,
    S3CredentialsError,
    ServerIdentity,
    make_pod_settings,
    make_server_objects,
    make_server_token_mount,
    make_server_token_secret,
    make_shared_objects,
    s3_credentials_from_auth_state,
    s3_credentials_from_secret,
    unprivileged_problems,
)
from sciencelab_spawner.profile_config import Size, make_profile_config
from sciencelab_spawner.user_options import UserOptionsError, resolve_user_options

from .k8s.schema import validate_strictly
from .option_oracle import RAW
from .profile_examples import example_config
from .test_user_options_fuzz import valid_options

PROFILES = {
    "images": {
        "python": {"image": "ghcr.io/sciencelab/user-python:2026.11"},
        "collab": {"image": "ghcr.io/sciencelab/user-collab:2026.11"},
    },
    "gpu_models": {
        "a100": {"node_label": "NVIDIA-A100-SXM4-80GB"},
        "mig-1g": {"resource": "nvidia.com/mig-1g.10gb"},
        "any": {},
    },
    "cvmfs_repositories": {"cms.cern.ch": {}, "sft.cern.ch": {}},
    "s3_buckets": {
        "opendata": {"endpoint": "https://s3.cern.ch", "bucket": "cms-opendata", "read_only": True},
        "my_scratch": {"endpoint": "https://s3.cern.ch", "bucket": "scratch"},
        "elsewhere": {"endpoint": "https://s3.example.org", "bucket": "other"},
    },
    "profiles": [
        {
            "slug": "cpu",
            "display_name": "CPU",
            "image": "python",
            "cvmfs": {"choices": ["cms.cern.ch", "sft.cern.ch"]},
            "s3": {"choices": ["opendata", "my_scratch", "elsewhere"]},
        },
        {
            "slug": "a100",
            "display_name": "A100",
            "gpu": {"model": "a100", "count": {"max": 2}},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
            ],
            "node_selector": {"sciencelab.io/pool": "gpu"},
        },
        {"slug": "mig", "display_name": "MIG", "gpu": {"model": "mig-1g"}},
        {"slug": "any-gpu", "display_name": "Any GPU", "gpu": {"model": "any"}},
        {
            "slug": "collab",
            "display_name": "Collaborative",
            "image": "python",
            "gpu": {"model": "a100"},
            "collaborative": {"choices": [False, True], "image": "collab"},
        },
    ],
}
CONFIG = make_profile_config(PROFILES, "test")
EXAMPLE = example_config()  # docs/examples/profiles.yaml, the file the fuzz strategies draw from
SERVER = ServerIdentity("jupyter-alice", "alice")
SITE = KubeSite(
    namespace="sciencelab",
    gpu_tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
    group_folders=frozenset({"cms-higgs", "atlas"}),
)
# KubeSpawner's settings before the profile: what ScienceLab's spawner defaults to.
CURRENT = {
    "image": "quay.io/jupyterhub/singleuser:latest",
    "extra_resource_limits": {},
    "node_selector": {},
    "node_affinity_required": [],
    "tolerations": [],
    "container_security_context": None,
    "pod_security_context": None,
}
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
A100_TERM = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]}
GIB = 1024**3
CREDENTIALS = S3Credentials("AKIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG")


def settings_for(options: dict, groups=(), site=SITE, current=CURRENT):
    resolved = resolve_user_options(CONFIG, options, groups)
    before = copy.deepcopy(current)
    settings = make_pod_settings(resolved, site, SERVER, groups, current)
    assert current == before, "make_pod_settings changed its input"
    return settings


def base(**changes) -> dict:
    """The traits of a spawn of a profile without options, changed by `changes`."""
    return {
        "image": CURRENT["image"],
        "extra_resource_limits": {},
        "node_selector": {},
        "node_affinity_required": [],
        "tolerations": [],
        "container_security_context": CONTAINER_SECURITY,
        "pod_security_context": POD_SECURITY,
        **changes,
    }


def test_image_and_the_enforced_security():
    settings = settings_for({"profile": "cpu"})
    assert settings == PodSettings(
        traits=base(image="ghcr.io/sciencelab/user-python:2026.11"),
        environment={"NVIDIA_VISIBLE_DEVICES": "none"},
        labels={"sciencelab.io/profile": "cpu"},
    )


def test_admin_security_settings_are_kept_but_cannot_weaken_the_enforced_ones():
    current = {
        **CURRENT,
        "container_security_context": {"readOnlyRootFilesystem": True, "privileged": True},
        "pod_security_context": {"runAsNonRoot": False, "supplementalGroups": [1500]},
    }
    traits = settings_for({"profile": "cpu"}, current=current).traits
    assert traits["container_security_context"] == {"readOnlyRootFilesystem": True, **CONTAINER_SECURITY}
    assert traits["pod_security_context"] == {"supplementalGroups": [1500], **POD_SECURITY}


def test_whole_gpus_of_a_model():
    settings = settings_for({"profile": "a100", "gpu_count": 2})
    assert settings == PodSettings(
        traits=base(
            extra_resource_limits={"nvidia.com/gpu": "2"},
            node_selector={"sciencelab.io/pool": "gpu"},
            node_affinity_required=[{"matchExpressions": [A100_TERM]}],
            # The profile's toleration of the GPU taint and the site's are one.
            tolerations=[
                GPU_TOLERATION,
                {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
            ],
        ),
        environment={},
        labels={"sciencelab.io/profile": "a100", "sciencelab.io/gpu-model": "a100"},
    )


def test_the_gpu_model_narrows_every_admin_affinity_term():
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
    current = {
        **CURRENT,
        "node_affinity_required": [{"matchExpressions": [zone]}, {"matchFields": []}],
        "extra_resource_limits": {"example.com/fpga": "1"},
        "node_selector": {"disk": "ssd"},
    }
    traits = settings_for({"profile": "a100"}, current=current).traits
    assert traits["node_affinity_required"] == [
        {"matchExpressions": [zone, A100_TERM]},
        {"matchFields": [], "matchExpressions": [A100_TERM]},
    ]
    assert traits["extra_resource_limits"] == {"example.com/fpga": "1", "nvidia.com/gpu": "1"}
    assert traits["node_selector"] == {"disk": "ssd", "sciencelab.io/pool": "gpu"}


def test_a_mig_slice_is_its_own_resource_without_a_product_label():
    settings = settings_for({"profile": "mig"})
    assert settings.traits == base(extra_resource_limits={"nvidia.com/mig-1g.10gb": "1"}, tolerations=[GPU_TOLERATION])
    assert settings.labels == {"sciencelab.io/profile": "mig", "sciencelab.io/gpu-model": "mig-1g"}


def test_a_model_without_a_label_may_go_to_any_gpu_node():
    traits = settings_for({"profile": "any-gpu"}).traits
    assert traits["node_affinity_required"] == []
    assert traits["extra_resource_limits"] == {"nvidia.com/gpu": "1"}


def test_collaboration_takes_its_own_image_and_drops_the_gpu():
    settings = settings_for({"profile": "collab", "collaborative": True})
    assert settings == PodSettings(
        traits=base(image="ghcr.io/sciencelab/user-collab:2026.11"),
        environment={"NVIDIA_VISIBLE_DEVICES": "none"},
        labels={"sciencelab.io/profile": "collab"},
    )
    assert settings_for({"profile": "collab", "collaborative": False}).traits["extra_resource_limits"] == {
        "nvidia.com/gpu": "1"
    }


def test_cvmfs_repositories_are_read_only_subpaths_of_the_csi_claim():
    settings = settings_for({"profile": "cpu", "cvmfs": ["sft.cern.ch", "cms.cern.ch"]})
    assert settings.volumes == (
        {"name": "cvmfs", "persistentVolumeClaim": {"claimName": "sciencelab-cvmfs", "readOnly": True}},
    )
    # In the admin's order, whatever order the user sent.
    assert settings.volume_mounts == tuple(
        {
            "name": "cvmfs",
            "mountPath": f"/cvmfs/{repo}",
            "subPath": repo,
            "readOnly": True,
            "mountPropagation": "HostToContainer",
        }
        for repo in ("cms.cern.ch", "sft.cern.ch")
    )


def test_cvmfs_from_the_nodes_in_hostpath_mode():
    site = KubeSite(namespace="sciencelab", cvmfs_mode="hostpath", cvmfs_host_path="/cvmfs")
    settings = settings_for({"profile": "cpu", "cvmfs": ["cms.cern.ch"]}, site=site)
    assert settings.volumes == ({"name": "cvmfs-0", "hostPath": {"path": "/cvmfs/cms.cern.ch", "type": "Directory"}},)
    assert settings.volume_mounts == (
        {"name": "cvmfs-0", "mountPath": "/cvmfs/cms.cern.ch", "readOnly": True, "mountPropagation": "HostToContainer"},
    )


def test_s3_buckets_are_claims_of_the_server_and_the_credentials_a_file():
    settings = settings_for({"profile": "cpu", "s3": ["my_scratch", "opendata"]})
    assert settings.volumes == (
        {"name": "s3-credentials", "secret": {"secretName": "jupyter-alice-s3", "defaultMode": 0o440}},
        {"name": "s3-0", "persistentVolumeClaim": {"claimName": "jupyter-alice-s3-opendata", "readOnly": True}},
        {
            "name": "s3-1",
            "persistentVolumeClaim": {"claimName": "jupyter-alice-s3-my-scratch---81aa7b5c", "readOnly": False},
        },
    )
    assert settings.volume_mounts == (
        {"name": "s3-credentials", "mountPath": "/etc/sciencelab/s3", "readOnly": True},
        {"name": "s3-0", "mountPath": "/s3/opendata", "readOnly": True},
        {"name": "s3-1", "mountPath": "/s3/my_scratch", "readOnly": False},
    )
    assert settings.environment == {
        "NVIDIA_VISIBLE_DEVICES": "none",
        "AWS_SHARED_CREDENTIALS_FILE": "/etc/sciencelab/s3/credentials",
        "AWS_CONFIG_FILE": "/etc/sciencelab/s3/config",
    }


def test_s3_credentials_file_only():
    site = KubeSite(namespace="sciencelab", s3_mount="credentials-file")
    settings = settings_for({"profile": "cpu", "s3": ["opendata", "elsewhere"]}, site=site)
    assert [volume["name"] for volume in settings.volumes] == ["s3-credentials"]
    # Two endpoints: no common endpoint to configure.
    assert settings.environment == {
        "NVIDIA_VISIBLE_DEVICES": "none",
        "AWS_SHARED_CREDENTIALS_FILE": "/etc/sciencelab/s3/credentials",
    }


def test_group_folders_for_members_only():
    settings = settings_for({"profile": "cpu"}, groups=["cms-higgs", "gpu-users", "atlas"])
    assert settings.volumes == (
        {"name": "group-0", "persistentVolumeClaim": {"claimName": "sciencelab-group-atlas"}},
        {"name": "group-1", "persistentVolumeClaim": {"claimName": "sciencelab-group-cms-higgs"}},
    )
    assert settings.volume_mounts == (
        {"name": "group-0", "mountPath": "/srv/groups/atlas"},
        {"name": "group-1", "mountPath": "/srv/groups/cms-higgs"},
    )
    assert settings_for({"profile": "cpu"}, groups=["gpu-users"]).volumes == ()


OFFLOAD_CONFIG = make_profile_config(
    {
        "images": {"python": {"image": "ghcr.io/sciencelab/user-python:2026.11"}},
        "profiles": [
            {
                "slug": "hpc-gpu",
                "display_name": "HPC GPU",
                "image": "python",
                "offload": {
                    "node": "interlink-slurm",
                    "tolerations": [{"key": "site.example.org/hpc", "operator": "Exists", "effect": "NoSchedule"}],
                    "resources": {"cpu": 8, "memory": "32G", "gpus": 1},
                    "job_flags": ["--partition=gpu", "--account=phys123", "--gres=gpu:1"],
                },
            },
            {
                "slug": "hpc-cpu",
                "display_name": "HPC CPU",
                "offload": {
                    "node": {"virtual-node.interlink/type": "virtual-kubelet"},
                    "resources": {"cpu": 1, "memory": "2G"},
                },
            },
        ],
    },
    "test",
)
# What ScienceLab's spawner has before the profile: the site's placement for its own nodes, a GPU
# taint toleration, and KubeSpawner's home claim next to a Secret the admin mounts.
OFFLOAD_CURRENT = {
    **CURRENT,
    "extra_resource_limits": {"example.com/fpga": "1"},
    "node_selector": {"node-role.example.org/users": "true"},
    "node_affinity_required": [{"matchExpressions": [A100_TERM]}],
    "tolerations": [GPU_TOLERATION],
    "volumes": {
        "home": {"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}},
        "site-ca": {"name": "site-ca", "secret": {"secretName": "site-ca"}},
    },
    "volume_mounts": {
        "home": {"name": "home", "mountPath": "/home/jovyan"},
        "site-ca": {"name": "site-ca", "mountPath": "/etc/site-ca", "readOnly": True},
    },
    "storage_pvc_ensure": True,
}
VIRTUAL_NODE_TOLERATION = {"key": "virtual-node.interlink/no-schedule", "operator": "Exists"}


def offloaded_settings(slug: str, groups=()) -> PodSettings:
    resolved = resolve_user_options(OFFLOAD_CONFIG, {"profile": slug}, groups)
    before = copy.deepcopy(OFFLOAD_CURRENT)
    settings = make_pod_settings(resolved, SITE, SERVER, groups, OFFLOAD_CURRENT)
    assert before == OFFLOAD_CURRENT, "make_pod_settings changed its input"
    return settings


def test_an_offloaded_pod_goes_to_the_virtual_node_with_its_job_flags():
    # Group folders are claims: not for the HPC side, even for members.
    settings = offloaded_settings("hpc-gpu", groups=["cms-higgs"])
    assert settings == PodSettings(
        traits=base(
            image="ghcr.io/sciencelab/user-python:2026.11",
            extra_resource_limits={"example.com/fpga": "1", "nvidia.com/gpu": "1"},
            # The site's placement describes its own nodes: replaced, not merged.
            node_selector={"kubernetes.io/hostname": "interlink-slurm"},
            node_affinity_required=[],
            tolerations=[
                GPU_TOLERATION,
                VIRTUAL_NODE_TOLERATION,
                {"key": "site.example.org/hpc", "operator": "Exists", "effect": "NoSchedule"},
            ],
            # Only what the SLURM plugin copies: the Secret stays, the home claim goes and is not made.
            volumes=[{"name": "site-ca", "secret": {"secretName": "site-ca"}}],
            volume_mounts=[{"name": "site-ca", "mountPath": "/etc/site-ca", "readOnly": True}],
            storage_pvc_ensure=False,
        ),
        # No NVIDIA_VISIBLE_DEVICES: SLURM decides which GPUs the job sees.
        environment={},
        labels={"sciencelab.io/profile": "hpc-gpu"},
        annotations={"slurm-job.vk.io/flags": "--partition=gpu --account=phys123 --gres=gpu:1"},
    )


def test_an_offloaded_pod_without_flags_or_gpus_selects_the_node_by_its_labels():
    settings = offloaded_settings("hpc-cpu")
    assert settings.traits["node_selector"] == {"virtual-node.interlink/type": "virtual-kubelet"}
    assert settings.traits["tolerations"] == [GPU_TOLERATION, VIRTUAL_NODE_TOLERATION]
    assert settings.traits["extra_resource_limits"] == {"example.com/fpga": "1"}
    assert (settings.environment, settings.annotations) == ({}, {})


def test_an_offloaded_profile_has_its_resources_as_a_fixed_size_and_holds_gpus():
    resolved = resolve_user_options(OFFLOAD_CONFIG, {"profile": "hpc-gpu"}, [])
    assert resolved.size == Size(
        "inline/hpc-gpu", "8 CPUs, 32G memory, 1 GPU on the HPC cluster", 8.0, 8.0, 32 * GIB, 32 * GIB
    )
    # Outside the hub's GPU quota, but stopped when idle like any server holding GPUs.
    assert (resolved.gpu_model, resolved.gpu_count, resolved.session.idle_timeout) == (None, 0, 7200)
    assert resolve_user_options(OFFLOAD_CONFIG, {"profile": "hpc-cpu"}, []).session.idle_timeout == 0


def test_an_offloaded_server_needs_no_shared_claims():
    resolved = resolve_user_options(OFFLOAD_CONFIG, {"profile": "hpc-gpu"}, [])
    assert make_shared_objects(resolved, SITE, ["cms-higgs", "atlas"]) == []
    objects = make_server_objects(resolved, SITE, SERVER, "hub-token", None)
    assert [manifest["metadata"]["name"] for manifest in objects] == ["jupyter-alice-hub-token"]


def test_the_token_secret_holds_the_access_key_where_the_hub_sends_notices():
    resolved = resolve_user_options(CONFIG, {"profile": "cpu"}, [])
    (token,) = make_server_objects(resolved, SITE, SERVER, "hub-token", None, access_key="the-key")
    assert token["stringData"] == {
        "JUPYTERHUB_API_TOKEN": "hub-token",
        "JPY_API_TOKEN": "hub-token",
        "SCIENCELAB_ACCESS_KEY": "the-key",
    }
    (without,) = make_server_objects(resolved, SITE, SERVER, "hub-token", None)
    assert "SCIENCELAB_ACCESS_KEY" not in without["stringData"]


def test_server_objects_for_csi_buckets():
    resolved = resolve_user_options(CONFIG, {"profile": "cpu", "s3": ["opendata"]}, [])
    token, secret, bucket_secret, volume, claim = make_server_objects(resolved, SITE, SERVER, "hub-token", CREDENTIALS)
    labels = {
        "app.kubernetes.io/managed-by": "sciencelab",
        "sciencelab.io/server": "jupyter-alice",
        "hub.jupyter.org/username": "alice",
    }
    annotations = {"hub.jupyter.org/username": "alice"}
    assert token == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "jupyter-alice-hub-token",
            "namespace": "sciencelab",
            "labels": {**labels, "app.kubernetes.io/component": "hub-token"},
            "annotations": annotations,
        },
        "stringData": {"JUPYTERHUB_API_TOKEN": "hub-token", "JPY_API_TOKEN": "hub-token"},
    }
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "jupyter-alice-s3",
            "namespace": "sciencelab",
            "labels": {**labels, "app.kubernetes.io/component": "s3-credentials"},
            "annotations": annotations,
        },
        "stringData": {
            "credentials": "[default]\naws_access_key_id = AKIAEXAMPLE\n"
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n",
            "config": "[default]\nendpoint_url = https://s3.cern.ch\n",
        },
    }
    bucket_labels = {**labels, "app.kubernetes.io/component": "s3-bucket"}
    assert bucket_secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "jupyter-alice-s3-opendata",
            "namespace": "sciencelab",
            "labels": bucket_labels,
            "annotations": annotations,
        },
        "stringData": {
            "accessKeyID": "AKIAEXAMPLE",
            "secretAccessKey": "wJalrXUtnFEMI/K7MDENG",
            "endpoint": "https://s3.cern.ch",
        },
    }
    reference = {"name": "jupyter-alice-s3-opendata", "namespace": "sciencelab"}
    assert volume == {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": "sciencelab-jupyter-alice-s3-opendata",
            "labels": {**bucket_labels, "sciencelab.io/namespace": "sciencelab"},
            "annotations": annotations,
        },
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "capacity": {"storage": "1Ti"},
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": "sciencelab", "name": "jupyter-alice-s3-opendata"},
            "csi": {
                "driver": "ru.yandex.s3.csi",
                "volumeHandle": "cms-opendata",
                "readOnly": True,
                "volumeAttributes": {},
                "nodeStageSecretRef": reference,
                "nodePublishSecretRef": reference,
            },
        },
    }
    assert claim == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "jupyter-alice-s3-opendata",
            "namespace": "sciencelab",
            "labels": bucket_labels,
            "annotations": annotations,
        },
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "storageClassName": "",
            "volumeName": "sciencelab-jupyter-alice-s3-opendata",
            "resources": {"requests": {"storage": "1Ti"}},
        },
    }
    for manifest in (token, secret, bucket_secret, volume, claim):
        validate_strictly(manifest)


def test_the_users_identity_token_is_a_secret_of_the_server_mounted_read_only_for_its_group():
    assert make_server_token_secret(SITE, SERVER, "eyJ-access-token") == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "jupyter-alice-identity-token",
            "namespace": "sciencelab",
            "labels": {
                "app.kubernetes.io/managed-by": "sciencelab",
                "app.kubernetes.io/component": "identity-token",
                "sciencelab.io/server": "jupyter-alice",
                "hub.jupyter.org/username": "alice",
            },
            "annotations": {"hub.jupyter.org/username": "alice"},
        },
        "stringData": {"token": "eyJ-access-token"},
    }
    assert make_server_token_mount("jupyter-alice") == (
        {"name": "identity-token", "secret": {"secretName": "jupyter-alice-identity-token", "defaultMode": 0o440}},
        {"name": "identity-token", "mountPath": "/var/run/secrets/sciencelab/identity", "readOnly": True},
    )


def test_server_objects_for_the_credentials_file_with_a_session_token():
    site = KubeSite(namespace="sciencelab", s3_mount="credentials-file")
    resolved = resolve_user_options(CONFIG, {"profile": "cpu", "s3": ["my_scratch", "elsewhere"]}, [])
    _, secret = make_server_objects(resolved, site, SERVER, "hub-token", S3Credentials("AK", "SK", "TOKEN"))
    assert secret["stringData"] == {
        "credentials": "[default]\naws_access_key_id = AK\naws_secret_access_key = SK\naws_session_token = TOKEN\n"
    }
    validate_strictly(secret)


def test_without_buckets_only_the_token_and_buckets_need_credentials():
    objects = make_server_objects(resolve_user_options(CONFIG, {"profile": "cpu"}, []), SITE, SERVER, "t", None)
    assert [manifest["metadata"]["name"] for manifest in objects] == ["jupyter-alice-hub-token"]
    with pytest.raises(S3CredentialsError):
        make_server_objects(
            resolve_user_options(CONFIG, {"profile": "cpu", "s3": ["opendata"]}, []), SITE, SERVER, "t", None
        )


def test_shared_objects_outlive_servers():
    resolved = resolve_user_options(CONFIG, {"profile": "cpu", "cvmfs": ["cms.cern.ch"]}, [])
    site = KubeSite(
        namespace="sciencelab",
        group_folders=frozenset({"cms-higgs"}),
        group_folder_storage_class="cephfs",
        group_folder_capacity="1Ti",
    )
    cvmfs, group = make_shared_objects(resolved, site, ["cms-higgs", "other"])
    assert cvmfs == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "sciencelab-cvmfs",
            "namespace": "sciencelab",
            "labels": {"app.kubernetes.io/managed-by": "sciencelab", "app.kubernetes.io/component": "cvmfs"},
        },
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "resources": {"requests": {"storage": "1"}},
            "storageClassName": "cvmfs",
        },
    }
    assert group == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "sciencelab-group-cms-higgs",
            "namespace": "sciencelab",
            "labels": {"app.kubernetes.io/managed-by": "sciencelab", "app.kubernetes.io/component": "group-folder"},
            "annotations": {"sciencelab.io/group": "cms-higgs"},
        },
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "1Ti"}},
            "storageClassName": "cephfs",
        },
    }
    for manifest in (cvmfs, group):
        validate_strictly(manifest)
    hostpath = KubeSite(namespace="sciencelab", cvmfs_mode="hostpath")
    assert make_shared_objects(resolved, hostpath, ["cms-higgs"]) == []


def test_group_names_become_safe_kubernetes_names():
    site = KubeSite(namespace="sciencelab", group_folders=frozenset({"CMS Higgs/../x"}))
    resolved = resolve_user_options(CONFIG, {"profile": "cpu"}, [])
    [claim] = make_shared_objects(resolved, site, ["CMS Higgs/../x"])
    mounts = make_pod_settings(resolved, site, SERVER, ["CMS Higgs/../x"], CURRENT).volume_mounts
    assert claim["metadata"]["name"] == "sciencelab-group-cms-higgs-x---449ac7a2"
    assert mounts[-1] == {"name": "group-0", "mountPath": "/srv/groups/cms-higgs-x---449ac7a2"}
    validate_strictly(claim)


def test_credentials_from_auth_state_and_from_a_secret():
    auth_state = {"s3_credentials": {"access_key_id": "AK", "secret_access_key": "SK", "session_token": "T"}}
    assert s3_credentials_from_auth_state(auth_state, "s3_credentials") == S3Credentials("AK", "SK", "T")
    assert s3_credentials_from_secret({"accessKeyID": "AK", "secretAccessKey": "SK"}, "s") == S3Credentials("AK", "SK")
    assert repr(S3Credentials("AK", "SK")) == "S3Credentials(<hidden>)"


@pytest.mark.parametrize(
    "auth_state, message",
    [
        (
            None,
            "your login carries no S3 credentials (auth state key 's3_credentials'); log out and in again, "
            "or ask your hub admin",
        ),
        ({"s3_credentials": "AK:SK"}, "your login carries no S3 credentials"),
        (
            {"s3_credentials": {"access_key_id": "AK"}},
            "the S3 secret access key in auth state key 's3_credentials' is missing or not a single word",
        ),
        (
            {"s3_credentials": {"access_key_id": "AK", "secret_access_key": "SK\n[evil]"}},
            "the S3 secret access key in auth state key 's3_credentials' is missing or not a single word",
        ),
        (
            {"s3_credentials": {"access_key_id": "AK", "secret_access_key": "SK", "session_token": 5}},
            "the S3 session token in auth state key 's3_credentials' is not a single word",
        ),
    ],
)
def test_unusable_credentials_are_named_never_shown(auth_state, message):
    with pytest.raises(S3CredentialsError) as error:
        s3_credentials_from_auth_state(auth_state, "s3_credentials")
    assert str(error.value).startswith(message)
    assert "SK" not in str(error.value)


def unprivileged_pod() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": dict(POD_SECURITY),
            "containers": [
                {
                    "name": "notebook",
                    "image": "x",
                    "securityContext": dict(CONTAINER_SECURITY),
                    "volumeMounts": [{"name": "cvmfs-0", "mountPath": "/cvmfs/cms.cern.ch", "readOnly": True}],
                }
            ],
            "volumes": [{"name": "cvmfs-0", "hostPath": {"path": "/cvmfs/cms.cern.ch", "type": "Directory"}}],
        },
    }


def test_an_unprivileged_pod_passes():
    assert unprivileged_problems(unprivileged_pod(), ["/cvmfs"]) == []
    validate_strictly(unprivileged_pod())


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda spec: spec.update(hostNetwork=True), "spec.hostNetwork is true"),
        (lambda spec: spec.update(hostPID=True), "spec.hostPID is true"),
        (
            lambda spec: spec["containers"][0]["securityContext"].update(privileged=True),
            "spec.containers[0] (notebook) is privileged",
        ),
        (
            lambda spec: spec["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
            "spec.containers[0] (notebook) may escalate privileges",
        ),
        (
            lambda spec: spec["containers"][0]["securityContext"].update(capabilities={"add": ["SYS_ADMIN"]}),
            "spec.containers[0] (notebook) adds capabilities ['SYS_ADMIN']",
        ),
        (
            lambda spec: spec["containers"][0]["securityContext"].update(runAsUser=0),
            "spec.containers[0] (notebook) runs as user 0",
        ),
        (
            lambda spec: (
                [spec[k].pop("seccompProfile") for k in ("securityContext",)]
                and spec["containers"][0]["securityContext"].pop("seccompProfile")
            ),
            "spec.containers[0] (notebook) has no seccomp profile",
        ),
        (
            lambda spec: spec.update(
                initContainers=[{"name": "chown", "image": "busybox", "securityContext": {"runAsUser": 0}}]
            ),
            "spec.initContainers[0] (chown) runs as user 0",
        ),
        (
            lambda spec: spec["volumes"].append({"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}),
            "volume docker mounts the node's /var/run/docker.sock",
        ),
        (
            lambda spec: spec["containers"][0]["volumeMounts"][0].pop("readOnly"),
            "volume cvmfs-0 mounts the node's /cvmfs/cms.cern.ch",
        ),
    ],
)
def test_privileges_are_named(change, problem):
    pod = unprivileged_pod()
    change(pod["spec"])
    assert problem in unprivileged_problems(pod, ["/cvmfs"])


def test_hostpath_cvmfs_needs_the_hostpath_mode():
    assert unprivileged_problems(unprivileged_pod()) == ["volume cvmfs-0 mounts the node's /cvmfs/cms.cern.ch"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid_options(RAW),
    st.sampled_from([(), ("gpu-users",), ("gpu-users", "cms-higgs")]),
    st.sampled_from([SITE, KubeSite(namespace="physics", cvmfs_mode="hostpath", s3_mount="credentials-file")]),
)
def test_every_accepted_request_makes_valid_objects(options, groups, site):
    """Whatever a user may send, every object is valid against the official schema, and nothing the
    user sent reaches a name except through the admin's catalog."""
    try:
        resolved = resolve_user_options(EXAMPLE, options, groups)
    except UserOptionsError:
        return  # a choice kept for other groups: refused before any object exists
    pod_settings = make_pod_settings(resolved, site, SERVER, groups, CURRENT)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": SERVER.pod_name, "labels": dict(pod_settings.labels)},
        "spec": {
            **{
                key: value
                for key, value in {
                    "nodeSelector": pod_settings.traits["node_selector"] or None,
                    "tolerations": pod_settings.traits["tolerations"] or None,
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": pod_settings.traits["node_affinity_required"]
                            }
                        }
                    }
                    if pod_settings.traits["node_affinity_required"]
                    else None,
                }.items()
                if value is not None
            },
            "securityContext": pod_settings.traits["pod_security_context"],
            "volumes": list(pod_settings.volumes),
            "containers": [
                {
                    "name": "notebook",
                    "image": pod_settings.traits["image"],
                    "securityContext": pod_settings.traits["container_security_context"],
                    "resources": {"limits": pod_settings.traits["extra_resource_limits"]},
                    "env": [{"name": k, "value": v} for k, v in pod_settings.environment.items()],
                    "volumeMounts": list(pod_settings.volume_mounts),
                }
            ],
        },
    }
    validate_strictly(pod)
    assert unprivileged_problems(pod, [site.cvmfs_host_path]) == []
    objects = [
        *make_server_objects(resolved, site, SERVER, "token", CREDENTIALS),
        *make_shared_objects(resolved, site, groups),
    ]
    for manifest in objects:
        validate_strictly(manifest)
