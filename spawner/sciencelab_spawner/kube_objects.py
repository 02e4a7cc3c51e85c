"""What a resolved profile becomes on Kubernetes: the pod's settings, Secrets, PVs and PVCs. Pure.

`make_pod_settings` turns (resolved profile, user, the admin's site settings, the spawner's
current settings) into the KubeSpawner settings of one server: image, GPU limits and node
affinity, tolerations, volumes and mounts for CVMFS, S3 and group folders, and the enforced
security contexts; for an offloaded profile, the interLink virtual node, its batch job's
annotation and only the volumes interLink's SLURM plugin copies (docs/hpc-offload.md).
`make_server_objects` builds what exists for one server only (Secrets of its API token and S3
credentials, its bucket volumes; deleted when it stops); `make_shared_objects` what outlives
servers (the CVMFS claim, group folders). `unprivileged_problems` checks a finished pod.

Nothing here formats a user string into a name or a command: names are built from the pod name
(KubeSpawner's safe slug) and catalog names, made safe with KubeSpawner's own slug functions.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kubespawner.slugs import is_valid_label, is_valid_object_name, safe_slug

from .profile_config import DEFAULT_GPU_RESOURCE, GpuModel, Offload, S3Bucket
from .share_watch import ACCESS_KEY_ENV
from .user_options import ResolvedProfile

GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set on GPU nodes by the NVIDIA GPU operator
MANAGED_BY = {"app.kubernetes.io/managed-by": "sciencelab"}
SERVER_LABEL = "sciencelab.io/server"  # per-server objects carry their pod's name: stop deletes them
NAMESPACE_LABEL = "sciencelab.io/namespace"  # on cluster-scoped objects (PVs), with SERVER_LABEL
PROFILE_LABEL = "sciencelab.io/profile"
GPU_MODEL_LABEL = "sciencelab.io/gpu-model"
# Security settings every container gets, whatever else the admin configured.
ENFORCED_CONTAINER_SECURITY = MappingProxyType(
    {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
)
ENFORCED_POD_SECURITY = MappingProxyType({"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}})
# S3 drivers ignore a volume's size, but Kubernetes requires one.
S3_VOLUME_SIZE = "1Ti"
# cvmfs-csi ignores the size too; its documentation asks for a non-zero one.
CVMFS_VOLUME_SIZE = "1"
SECRET_FILE_MODE = 0o440  # the files of a mounted Secret: readable by the owner and the pod's fsGroup
# Credentials go into an INI file: printable ASCII without spaces, so no value can add a line.
CREDENTIAL_VALUE = re.compile(r"[\x21-\x7e]+")
# Where JupyterHub hands the server its API token; the pod reads them from the server's Secret.
HUB_TOKEN_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
# The traits `make_pod_settings` may set (the last three for offloaded profiles only); a spawner
# restores them before each spawn.
POD_SETTING_TRAITS = (
    "image",
    "extra_resource_limits",
    "node_selector",
    "node_affinity_required",
    "tolerations",
    "container_security_context",
    "pod_security_context",
    "volumes",
    "volume_mounts",
    "storage_pvc_ensure",
)
# interLink's virtual node carries this NoSchedule taint, so only pods meant for it go there; an
# offloaded pod tolerates it as interLink's own examples do.
# ref: https://github.com/interlink-hq/interLink/blob/f632175701d78b604138ce2e1e38af13d1f7546b/pkg/virtualkubelet/virtualkubelet.go#L416-L431
VIRTUAL_NODE_TOLERATION = MappingProxyType({"key": "virtual-node.interlink/no-schedule", "operator": "Exists"})
# The annotation interLink's SLURM plugin reads `sbatch` options from, one `#SBATCH` line per option.
# ref: https://github.com/interlink-hq/interlink-slurm-plugin/blob/f8451d93e063b7addc606d227a525fe614d91958/pkg/slurm/prepare.go#L1070-L1072
SLURM_FLAGS_ANNOTATION = "slurm-job.vk.io/flags"
# The volume kinds the SLURM plugin copies to the HPC side. It skips a volume of any other kind
# (a claim) and, with it, every mount of the container it had prepared, Secrets included.
# ref: https://github.com/interlink-hq/interlink-slurm-plugin/blob/f8451d93e063b7addc606d227a525fe614d91958/pkg/slurm/prepare.go#L952-L955
OFFLOADED_VOLUME_KINDS = ("secret", "configMap", "emptyDir", "projected")


@dataclass(frozen=True)
class KubeSite:
    """The admin's Kubernetes settings that shape a server's objects (see `KubeProfileSpawner`)."""

    namespace: str
    cvmfs_mode: str = "csi"  # "csi": subPaths of one cvmfs-csi PVC; "hostpath": the nodes' own /cvmfs
    cvmfs_storage_class: str = "cvmfs"
    cvmfs_pvc_name: str = "sciencelab-cvmfs"
    cvmfs_host_path: str = "/cvmfs"
    s3_mount: str = "csi"  # "csi": buckets as per-server PV/PVC, plus the file; "credentials-file": the file
    s3_csi_driver: str = "ru.yandex.s3.csi"
    s3_csi_volume_attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    s3_mount_root: str = "/s3"
    s3_credentials_dir: str = "/etc/sciencelab/s3"
    group_folders: frozenset[str] = frozenset()
    group_folder_storage_class: str = ""
    group_folder_capacity: str = "50Gi"
    group_folders_root: str = "/srv/groups"
    gpu_tolerations: tuple[Mapping, ...] = ()


@dataclass(frozen=True)
class ServerIdentity:
    """Who a server is, in the terms Kubernetes objects use."""

    pod_name: str
    username: str  # JupyterHub's name, unescaped: goes into annotations only

    @property
    def username_label(self) -> str:
        return safe_slug(self.username, is_valid=is_valid_label)


@dataclass(frozen=True, repr=False)
class S3Credentials:
    """One user's S3 keys. Its repr hides them, so a stray log line cannot leak them."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return "S3Credentials(<hidden>)"


class S3CredentialsError(ValueError):
    """The credentials found are unusable; the message names what is wrong, never a value."""


@dataclass(frozen=True)
class PodSettings:
    """One spawn's KubeSpawner trait values, and what goes into the pod besides KubeSpawner's own
    settings, word for word: KubeSpawner formats the strings of `environment`, `volumes`,
    `volume_mounts` and `extra_labels` with the user's name, and these are no templates."""

    traits: Mapping[str, object]
    environment: Mapping[str, str]
    volumes: tuple[Mapping, ...] = ()
    volume_mounts: tuple[Mapping, ...] = ()
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


# --- names -------------------------------------------------------------------------------------


def hub_token_secret_name(pod_name: str) -> str:
    return f"{pod_name}-hub-token"


def server_token_secret_name(pod_name: str) -> str:
    return f"{pod_name}-identity-token"


def s3_credentials_secret_name(pod_name: str) -> str:
    return f"{pod_name}-s3"


def s3_bucket_object_name(pod_name: str, bucket: S3Bucket) -> str:
    """The name of the Secret and PVC of one bucket of one server."""
    return f"{pod_name}-s3-{safe_slug(bucket.name, is_valid=is_valid_object_name)}"


def s3_bucket_volume_name(namespace: str, pod_name: str, bucket: S3Bucket) -> str:
    """PersistentVolumes are cluster-wide: the namespace keeps two hubs' names apart."""
    return f"{namespace}-{s3_bucket_object_name(pod_name, bucket)}"


def group_folder_slug(group: str) -> str:
    return safe_slug(group, is_valid=is_valid_object_name)


def group_folder_claim_name(group: str) -> str:
    return f"sciencelab-group-{group_folder_slug(group)}"


def member_group_folders(site: KubeSite, groups: Iterable[str]) -> list[str]:
    """The groups of a user that have a shared folder, sorted: each is mounted for members only."""
    return sorted(site.group_folders.intersection(groups))


def mounted_group_folders(resolved: ResolvedProfile, site: KubeSite, groups: Iterable[str]) -> list[str]:
    """The group folders a server of `resolved` mounts: none when offloaded (claims stay behind)."""
    return [] if resolved.offload is not None else member_group_folders(site, groups)


# --- the pod -----------------------------------------------------------------------------------


def make_pod_settings(
    resolved: ResolvedProfile,
    site: KubeSite,
    server: ServerIdentity,
    groups: Iterable[str],
    current: Mapping[str, object],
) -> PodSettings:
    """The KubeSpawner settings (POD_SETTING_TRAITS) of a spawn of `resolved`.

    `current` holds the spawner's values of those traits before the profile (the admin's
    configuration and JupyterHub's group overrides); the profile adds to them, except the security
    contexts, where the enforced settings win, and an offloaded profile's placement and volumes.
    The profile's volumes, mounts, labels and annotations come on top of the admin's.
    """
    volumes, mounts, environment = [], [], {}
    labels = {PROFILE_LABEL: resolved.slug}
    annotations = {}
    traits = {
        "image": resolved.image.image if resolved.image is not None else current["image"],
        "extra_resource_limits": dict(current["extra_resource_limits"]),
        "node_selector": {**current["node_selector"], **resolved.node_selector},
        "node_affinity_required": _as_list(current["node_affinity_required"]),
        "tolerations": _unique([*_as_list(current["tolerations"]), *map(dict, resolved.tolerations)]),
        "container_security_context": {**(current["container_security_context"] or {}), **ENFORCED_CONTAINER_SECURITY},
        "pod_security_context": {**(current["pod_security_context"] or {}), **ENFORCED_POD_SECURITY},
    }
    if resolved.gpu_model is not None:
        _add_gpus(traits, resolved.gpu_model, resolved.gpu_count, site)
        labels[GPU_MODEL_LABEL] = resolved.gpu_model.name
    elif resolved.offload is None:
        # With the NVIDIA container runtime as the default, an image could ask for every GPU of
        # the node through this variable; a pod without GPUs gets none. (On the HPC side SLURM
        # confines a job to its GPUs, and the variable could hide them from the container.)
        environment["NVIDIA_VISIBLE_DEVICES"] = "none"
    if resolved.offload is not None:
        annotations.update(_offload(traits, resolved.offload, current))
    _add_cvmfs(volumes, mounts, resolved, site)
    environment.update(_add_s3(volumes, mounts, resolved, site, server))
    for index, group in enumerate(mounted_group_folders(resolved, site, groups)):
        volumes.append(
            {"name": f"group-{index}", "persistentVolumeClaim": {"claimName": group_folder_claim_name(group)}}
        )
        mounts.append({"name": f"group-{index}", "mountPath": f"{site.group_folders_root}/{group_folder_slug(group)}"})
    return PodSettings(traits, environment, tuple(volumes), tuple(mounts), labels, annotations)


def _add_gpus(traits: dict, model: GpuModel, count: int, site: KubeSite):
    traits["extra_resource_limits"][model.resource] = str(count)
    traits["tolerations"] = _unique([*traits["tolerations"], *map(dict, site.gpu_tolerations)])
    if model.node_label is not None:
        # Node selector terms are alternatives: the model's label must hold in each of them.
        expression = {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [model.node_label]}
        terms = traits["node_affinity_required"] or [{}]
        traits["node_affinity_required"] = [
            {**term, "matchExpressions": [*term.get("matchExpressions", []), expression]} for term in terms
        ]


def _offload(traits: dict, offload: Offload, current: Mapping[str, object]) -> dict[str, str]:
    """Send the pod to the interLink virtual node and shape its batch job; returns its annotations.

    The site's node selector and required affinity describe the cluster's own nodes, which the
    virtual node is not: the offload's selector replaces them. Volumes the SLURM plugin cannot copy
    (the home claim and any other claim) are left out, and the home claim is not created.
    """
    traits["node_selector"] = dict(offload.node_selector)
    traits["node_affinity_required"] = []
    traits["tolerations"] = _unique(
        [*traits["tolerations"], dict(VIRTUAL_NODE_TOLERATION), *map(dict, offload.tolerations)]
    )
    if offload.gpus:
        traits["extra_resource_limits"][DEFAULT_GPU_RESOURCE] = str(offload.gpus)
    volumes = [volume for volume in _as_list(current["volumes"]) if _copied_to_hpc(volume)]
    names = {volume["name"] for volume in volumes}
    traits["volumes"] = volumes
    traits["volume_mounts"] = [mount for mount in _as_list(current["volume_mounts"]) if mount["name"] in names]
    traits["storage_pvc_ensure"] = False
    return {SLURM_FLAGS_ANNOTATION: " ".join(offload.job_flags)} if offload.job_flags else {}


def _copied_to_hpc(volume: Mapping) -> bool:
    return any(kind in volume for kind in OFFLOADED_VOLUME_KINDS)


def _add_cvmfs(volumes: list, mounts: list, resolved: ResolvedProfile, site: KubeSite):
    if not resolved.cvmfs:
        return
    if site.cvmfs_mode == "csi":
        # One claim of the automount StorageClass; each repository is a subPath of it.
        volumes.append({"name": "cvmfs", "persistentVolumeClaim": {"claimName": site.cvmfs_pvc_name, "readOnly": True}})
        mounts.extend(
            {
                "name": "cvmfs",
                "mountPath": repository.mount_path,
                "subPath": repository.name,
                "readOnly": True,
                "mountPropagation": "HostToContainer",
            }
            for repository in resolved.cvmfs
        )
        return
    for index, repository in enumerate(resolved.cvmfs):
        volumes.append(
            {
                "name": f"cvmfs-{index}",
                "hostPath": {"path": f"{site.cvmfs_host_path}/{repository.name}", "type": "Directory"},
            }
        )
        mounts.append(
            {
                "name": f"cvmfs-{index}",
                "mountPath": repository.mount_path,
                "readOnly": True,
                "mountPropagation": "HostToContainer",
            }
        )


def _add_s3(
    volumes: list, mounts: list, resolved: ResolvedProfile, site: KubeSite, server: ServerIdentity
) -> dict[str, str]:
    """Mount the credentials file, and each bucket where the site mounts them; returns the
    environment that points boto and s3fs at the file."""
    if not resolved.s3:
        return {}
    volumes.append(
        {
            "name": "s3-credentials",
            "secret": {"secretName": s3_credentials_secret_name(server.pod_name), "defaultMode": SECRET_FILE_MODE},
        }
    )
    mounts.append({"name": "s3-credentials", "mountPath": site.s3_credentials_dir, "readOnly": True})
    environment = {"AWS_SHARED_CREDENTIALS_FILE": f"{site.s3_credentials_dir}/credentials"}
    if _common_endpoint(resolved.s3):
        environment["AWS_CONFIG_FILE"] = f"{site.s3_credentials_dir}/config"
    if site.s3_mount == "csi":
        for index, bucket in enumerate(resolved.s3):
            volumes.append(
                {
                    "name": f"s3-{index}",
                    "persistentVolumeClaim": {
                        "claimName": s3_bucket_object_name(server.pod_name, bucket),
                        "readOnly": bucket.read_only,
                    },
                }
            )
            mounts.append(
                {
                    "name": f"s3-{index}",
                    "mountPath": f"{site.s3_mount_root}/{bucket.name}",
                    "readOnly": bucket.read_only,
                }
            )
    return environment


def _common_endpoint(buckets: Iterable[S3Bucket]) -> str | None:
    endpoints = {bucket.endpoint for bucket in buckets}
    return endpoints.pop() if len(endpoints) == 1 else None


def _unique(items: list[dict]) -> list[dict]:
    """`items` without repeats (a profile and the site may both tolerate the GPU taint)."""
    return [item for index, item in enumerate(items) if item not in items[:index]]


def _as_list(value) -> list:
    """KubeSpawner's list-or-dict settings as a list (a dict's values sorted by key, as KubeSpawner does)."""
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    return list(value or [])


# --- objects besides the pod -------------------------------------------------------------------


def make_server_objects(
    resolved: ResolvedProfile,
    site: KubeSite,
    server: ServerIdentity,
    hub_token: str,
    credentials: S3Credentials | None,
    access_key: str = "",
) -> list[dict]:
    """The Secrets, PersistentVolumes and PersistentVolumeClaims of one server, in creation order:
    the server's JupyterHub API token, then its S3 credentials and buckets.

    They carry SERVER_LABEL, so stopping the server finds and deletes them.
    """
    token = _secret(
        hub_token_secret_name(server.pod_name), site, server, "hub-token", make_hub_token_data(hub_token, access_key)
    )
    return [token, *_s3_objects(resolved, site, server, credentials)]


# Where a server reads its user's identity token (server_token.py): the file of a mounted Secret, which
# the kubelet updates in the running pod when the hub replaces the Secret after a refresh.
SERVER_TOKEN_DIR = "/var/run/secrets/sciencelab/identity"
SERVER_TOKEN_PATH = f"{SERVER_TOKEN_DIR}/token"


def make_server_token_secret(site: KubeSite, server: ServerIdentity, token: str) -> dict:
    """The Secret holding the user's identity token for one server (deleted with the server's objects)."""
    return _secret(server_token_secret_name(server.pod_name), site, server, "identity-token", {"token": token})


def make_server_token_mount(pod_name: str) -> tuple[dict, dict]:
    """The volume and the read-only mount that put the server's token Secret at SERVER_TOKEN_PATH."""
    volume = {
        "name": "identity-token",
        "secret": {"secretName": server_token_secret_name(pod_name), "defaultMode": SECRET_FILE_MODE},
    }
    return volume, {"name": "identity-token", "mountPath": SERVER_TOKEN_DIR, "readOnly": True}


def make_hub_token_data(hub_token: str, access_key: str = "") -> dict[str, str]:
    """What the server's token Secret holds: its API token and, where the hub sends it notices of
    changed access (share_watch.py), its key for them."""
    return {**dict.fromkeys(HUB_TOKEN_ENV, hub_token), **({ACCESS_KEY_ENV: access_key} if access_key else {})}


def hub_token_environment(pod_name: str) -> dict[str, dict]:
    """The environment entries that read the API token and the access key from the server's
    Secret, not a literal."""
    return {
        name: {"name": name, "valueFrom": {"secretKeyRef": {"name": hub_token_secret_name(pod_name), "key": name}}}
        for name in (*HUB_TOKEN_ENV, ACCESS_KEY_ENV)
    }


def _s3_objects(
    resolved: ResolvedProfile, site: KubeSite, server: ServerIdentity, credentials: S3Credentials | None
) -> list[dict]:
    if not resolved.s3:
        return []
    if credentials is None:
        raise S3CredentialsError("S3 buckets need credentials")
    files = {"credentials": make_credentials_file(credentials)}
    endpoint = _common_endpoint(resolved.s3)
    if endpoint:
        files["config"] = f"[default]\nendpoint_url = {endpoint}\n"
    objects = [_secret(s3_credentials_secret_name(server.pod_name), site, server, "s3-credentials", files)]
    if site.s3_mount != "csi":
        return objects
    for bucket in resolved.s3:
        name = s3_bucket_object_name(server.pod_name, bucket)
        # The keys k8s-csi-s3 reads; its driver mounts with the user's own keys.
        keys = {
            "accessKeyID": credentials.access_key_id,
            "secretAccessKey": credentials.secret_access_key,
            "endpoint": bucket.endpoint,
        }
        objects.append(_secret(name, site, server, "s3-bucket", keys))
        objects.append(make_s3_volume(bucket, site, server))
        objects.append(make_s3_claim(bucket, site, server))
    return objects


def make_credentials_file(credentials: S3Credentials) -> str:
    """The AWS shared credentials file boto3, s3fs and the AWS CLI read."""
    lines = [
        "[default]",
        f"aws_access_key_id = {credentials.access_key_id}",
        f"aws_secret_access_key = {credentials.secret_access_key}",
    ]
    if credentials.session_token:
        lines.append(f"aws_session_token = {credentials.session_token}")
    return "\n".join(lines) + "\n"


def make_s3_volume(bucket: S3Bucket, site: KubeSite, server: ServerIdentity) -> dict:
    """A PersistentVolume of `bucket` for one server, bound in advance to that server's claim."""
    name = s3_bucket_object_name(server.pod_name, bucket)
    secret = {"name": name, "namespace": site.namespace}
    access = "ReadOnlyMany" if bucket.read_only else "ReadWriteMany"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": s3_bucket_volume_name(site.namespace, server.pod_name, bucket),
            "labels": {**_server_labels(server, "s3-bucket"), NAMESPACE_LABEL: site.namespace},
            "annotations": _annotations(server),
        },
        "spec": {
            "accessModes": [access],
            "capacity": {"storage": S3_VOLUME_SIZE},
            # Retain: deleting the volume must never ask the driver to delete the bucket.
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": site.namespace, "name": name},
            "csi": {
                "driver": site.s3_csi_driver,
                "volumeHandle": bucket.bucket,
                "readOnly": bucket.read_only,
                "volumeAttributes": dict(site.s3_csi_volume_attributes),
                "nodeStageSecretRef": secret,
                "nodePublishSecretRef": secret,
            },
        },
    }


def make_s3_claim(bucket: S3Bucket, site: KubeSite, server: ServerIdentity) -> dict:
    access = "ReadOnlyMany" if bucket.read_only else "ReadWriteMany"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": s3_bucket_object_name(server.pod_name, bucket),
            "namespace": site.namespace,
            "labels": _server_labels(server, "s3-bucket"),
            "annotations": _annotations(server),
        },
        "spec": {
            "accessModes": [access],
            "storageClassName": "",
            "volumeName": s3_bucket_volume_name(site.namespace, server.pod_name, bucket),
            "resources": {"requests": {"storage": S3_VOLUME_SIZE}},
        },
    }


def make_shared_objects(resolved: ResolvedProfile, site: KubeSite, groups: Iterable[str]) -> list[dict]:
    """The claims a server needs that outlive it: the CVMFS automount claim (csi mode) and the
    folders of the user's groups. Created when missing, never deleted by a stop."""
    objects = []
    if resolved.cvmfs and site.cvmfs_mode == "csi":
        objects.append(
            _claim(site.cvmfs_pvc_name, site, "cvmfs", "ReadOnlyMany", CVMFS_VOLUME_SIZE, site.cvmfs_storage_class)
        )
    for group in mounted_group_folders(resolved, site, groups):
        claim = _claim(
            group_folder_claim_name(group),
            site,
            "group-folder",
            "ReadWriteMany",
            site.group_folder_capacity,
            site.group_folder_storage_class,
        )
        claim["metadata"]["annotations"] = {"sciencelab.io/group": group}
        objects.append(claim)
    return objects


def _claim(name: str, site: KubeSite, component: str, access: str, size: str, storage_class: str) -> dict:
    spec = {"accessModes": [access], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": site.namespace,
            "labels": {**MANAGED_BY, "app.kubernetes.io/component": component},
        },
        "spec": spec,
    }


def _secret(name: str, site: KubeSite, server: ServerIdentity, component: str, data: Mapping[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": site.namespace,
            "labels": _server_labels(server, component),
            "annotations": _annotations(server),
        },
        "stringData": dict(data),
    }


def _server_labels(server: ServerIdentity, component: str) -> dict[str, str]:
    return {
        **MANAGED_BY,
        "app.kubernetes.io/component": component,
        SERVER_LABEL: server.pod_name,
        "hub.jupyter.org/username": server.username_label,
    }


def _annotations(server: ServerIdentity) -> dict[str, str]:
    return {"hub.jupyter.org/username": server.username}


# --- credentials -------------------------------------------------------------------------------


def s3_credentials_from_auth_state(auth_state: object, key: str) -> S3Credentials:
    """The credentials an authenticator stored in `auth_state[key]`:
    `{"access_key_id": ..., "secret_access_key": ..., "session_token": ... (optional)}`."""
    entry = auth_state.get(key) if isinstance(auth_state, Mapping) else None
    if not isinstance(entry, Mapping):
        raise S3CredentialsError(
            f"your login carries no S3 credentials (auth state key {key!r}); "
            "log out and in again, or ask your hub admin"
        )
    return _checked_credentials(
        entry.get("access_key_id"),
        entry.get("secret_access_key"),
        entry.get("session_token"),
        f"auth state key {key!r}",
    )


def s3_credentials_from_secret(data: Mapping[str, str], secret_name: str) -> S3Credentials:
    """The credentials in an admin's Secret (decoded `data`): keys `accessKeyID`,
    `secretAccessKey` and optionally `sessionToken`."""
    return _checked_credentials(
        data.get("accessKeyID"), data.get("secretAccessKey"), data.get("sessionToken"), f"Secret {secret_name!r}"
    )


def _checked_credentials(key_id, secret_key, token, where: str) -> S3Credentials:
    for name, value in (("access key id", key_id), ("secret access key", secret_key)):
        if not isinstance(value, str) or not CREDENTIAL_VALUE.fullmatch(value):
            raise S3CredentialsError(f"the S3 {name} in {where} is missing or not a single word")
    if token is not None and (not isinstance(token, str) or not CREDENTIAL_VALUE.fullmatch(token)):
        raise S3CredentialsError(f"the S3 session token in {where} is not a single word")
    return S3Credentials(key_id, secret_key, token or None)


# --- the finished pod --------------------------------------------------------------------------


def unprivileged_problems(pod: Mapping, allowed_host_paths: Iterable[str] = ()) -> list[str]:
    """What makes `pod` (a manifest as sent to the API server) anything but unprivileged.

    Checks every container, init containers included: no privilege or escalation, all
    capabilities dropped, never root, seccomp RuntimeDefault; no host network, PID or IPC; no
    hostPath volume except read-only ones under `allowed_host_paths` (the CVMFS hostPath mode).
    """
    spec = pod["spec"]
    problems = [f"spec.{name} is true" for name in ("hostNetwork", "hostPID", "hostIPC") if spec.get(name)]
    pod_context = spec.get("securityContext") or {}
    for kind in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(kind) or []):
            where = f"spec.{kind}[{index}] ({container.get('name')})"
            context = container.get("securityContext") or {}
            if context.get("privileged"):
                problems.append(f"{where} is privileged")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where} may escalate privileges")
            capabilities = context.get("capabilities") or {}
            if capabilities.get("add"):
                problems.append(f"{where} adds capabilities {capabilities['add']}")
            if "ALL" not in (capabilities.get("drop") or []):
                problems.append(f"{where} does not drop all capabilities")
            if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
                problems.append(f"{where} may run as root (runAsNonRoot is not set)")
            if context.get("runAsUser", pod_context.get("runAsUser")) == 0:
                problems.append(f"{where} runs as user 0")
            seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{where} has no seccomp profile")
    mounts = [
        mount
        for kind in ("initContainers", "containers")
        for container in spec.get(kind) or []
        for mount in container.get("volumeMounts") or []
    ]
    roots = [root.rstrip("/") + "/" for root in allowed_host_paths]
    for volume in spec.get("volumes") or []:
        if "hostPath" not in volume:
            continue
        path = volume["hostPath"]["path"]
        writable = any(not mount.get("readOnly") for mount in mounts if mount["name"] == volume["name"])
        if writable or not any(path.startswith(root) for root in roots):
            problems.append(f"volume {volume['name']} mounts the node's {path}")
    return problems
