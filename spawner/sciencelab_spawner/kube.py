"""KubeSpawner with profiles: each server an unprivileged pod with its GPUs, CVMFS, S3 and home.

The profile is resolved (and the GPU quota and availability checked) by `ProfileSpawnerMixin`;
`kube_objects` turns it into KubeSpawner settings and the Secrets, PVs and PVCs of the server;
this class only does the I/O: reading S3 credentials, creating those objects before the pod,
deleting the server's own ones after it, and keeping the shared GPU inventory.
"""

import asyncio
import base64
import time

from jupyterhub.spawner import SpawnException
from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client import V1Volume, V1VolumeMount
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.utils import get_k8s_model
from traitlets import Callable, Dict, Enum, List, Unicode, default, validate

from .compat.kubespawner import expand_name_template
from .delegates import DelegatingSpawnerMixin
from .kube_inventory import gpu_status, shared_gpu_inventory
from .kube_objects import (
    NAMESPACE_LABEL,
    POD_SETTING_TRAITS,
    SERVER_LABEL,
    SERVER_TOKEN_PATH,
    KubeSite,
    PodSettings,
    S3Credentials,
    S3CredentialsError,
    ServerIdentity,
    hub_token_environment,
    make_pod_settings,
    make_server_objects,
    make_server_token_mount,
    make_server_token_secret,
    make_shared_objects,
    s3_credentials_from_auth_state,
    s3_credentials_from_secret,
    unprivileged_problems,
)
from .local_gpus import GpuInventoryError, GpuUnavailableError
from .profile_config import GpuModel, ProfileConfig
from .profile_spawner import ProfileSpawnerMixin, SpawnRefusal
from .share_watch import ACCESS_KEY_ENV
from .slurm_jobs import SlurmProfilesMixin
from .user_options import ResolvedProfile, UserOptionsError

# The client method suffix of each kind the spawner creates besides the pod (`create_` + suffix, ...);
# cluster-scoped kinds take no namespace.
NAMESPACED = {
    "Secret": "namespaced_secret",
    "PersistentVolumeClaim": "namespaced_persistent_volume_claim",
}
CLUSTER_SCOPED = {"PersistentVolume": "persistent_volume"}
TERMINATING_WAIT = 60  # seconds to wait for a claim or volume of the same name to finish deleting


class CheckedPodHook:
    """`KubeProfileSpawner.modify_pod_hook`: the admin's hook, if any, then `check_pod`."""

    def __init__(self, admin_hook=None):
        self.admin_hook = admin_hook

    async def __call__(self, spawner: "KubeProfileSpawner", pod):
        if self.admin_hook is not None:
            pod = await maybe_future(self.admin_hook(spawner, pod))
        spawner.check_pod(pod)
        return pod


class KubeProfileSpawner(ProfileSpawnerMixin, DelegatingSpawnerMixin, SlurmProfilesMixin, KubeSpawner):
    """Starts each server as an unprivileged pod with the resources of a profile from the allowlist.

    Everything KubeSpawner offers still applies (namespace, storage, image pull secrets, ...);
    the profile adds to it. Pods always run as non-root with every capability dropped, no
    privilege escalation and the RuntimeDefault seccomp profile; a configuration that would
    break this (`extra_pod_config` with hostNetwork, a privileged extra container) fails the
    spawn with the reason.
    """

    spawner_kind = "kubernetes"
    # `runs_on: slurm` profiles need the SLURM client where the hub runs (not in the chart's image).
    runs_on_kinds = frozenset({"kubernetes", "slurm"})

    def delegate_makers(self):
        return {"slurm": self.make_slurm_job}

    cvmfs_mode = Enum(
        ["csi", "hostpath"],
        default_value="csi",
        config=True,
        help="""
        How CVMFS repositories reach the pods.

        "csi" (default): one PersistentVolumeClaim `cvmfs_pvc_name` of the cvmfs-csi driver's
        automount StorageClass `cvmfs_storage_class` in the hub namespace (created when missing,
        never deleted); each chosen repository is a read-only subPath of it at /cvmfs/<repo>,
        with `mountPropagation: HostToContainer`.
        "hostpath": the nodes mount CVMFS themselves at `cvmfs_host_path`; each repository is a
        read-only hostPath volume (the only hostPath a pod may have). Example: "hostpath" on
        sites whose nodes already run autofs for /cvmfs.
        """,
    )

    cvmfs_storage_class = Unicode(
        "cvmfs",
        config=True,
        help="""
        With `cvmfs_mode` "csi": the StorageClass of the cvmfs-csi driver (provisioner
        `cvmfs.csi.cern.ch`, no `repository` parameter: automounts). Default: "cvmfs".
        """,
    )

    cvmfs_pvc_name = Unicode(
        "sciencelab-cvmfs",
        config=True,
        help="""
        With `cvmfs_mode` "csi": the name of the one ReadOnlyMany claim all servers of the
        namespace share. Default: "sciencelab-cvmfs". Example: "cvmfs" to use a claim the site
        already made.
        """,
    )

    cvmfs_host_path = Unicode(
        "/cvmfs",
        config=True,
        help="""
        With `cvmfs_mode` "hostpath": where the nodes mount CVMFS (autofs). Default: "/cvmfs".
        Example: "/mnt/cvmfs".
        """,
    )

    s3_mount = Enum(
        ["csi", "credentials-file"],
        default_value="csi",
        config=True,
        help="""
        How a server gets the S3 buckets of its profile. Either way the user's credentials are in
        a Secret of the server, mounted read-only at `s3_credentials_dir` as an AWS `credentials`
        file (and `config` with the endpoint) that boto3, s3fs and the AWS CLI read through
        AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE; never as environment values.

        "csi" (default): each bucket is also mounted at `s3_mount_root`/<name> through the CSI
        driver `s3_csi_driver`, as a PersistentVolume and claim of the server, with a Secret of
        the user's keys the driver mounts with. "credentials-file": only the file. Example:
        "credentials-file" on clusters without an S3 CSI driver.
        """,
    )

    s3_csi_driver = Unicode(
        "ru.yandex.s3.csi",
        config=True,
        help="""
        With `s3_mount` "csi": the CSI driver of the buckets' volumes. Default: "ru.yandex.s3.csi"
        (k8s-csi-s3, which reads `accessKeyID`, `secretAccessKey` and `endpoint` from the volume's
        Secret and the bucket from the volume handle). Example: "ch.ctrox.csi.s3-driver" (csi-s3,
        which reads the same keys).
        """,
    )

    s3_csi_volume_attributes = Dict(
        {"mounter": "geesefs"},
        config=True,
        help="""
        With `s3_mount` "csi": `volumeAttributes` of each bucket's PersistentVolume, for the
        driver. Default: {"mounter": "geesefs"}. Example:
        {"mounter": "geesefs", "options": "--memory-limit 1000 --dir-mode 0770 --file-mode 0660"}.
        """,
    )

    s3_mount_root = Unicode(
        "/s3",
        config=True,
        help="""
        With `s3_mount` "csi": where buckets are mounted, each at <root>/<bucket name>. Default:
        "/s3". Example: "/data/s3".
        """,
    )

    s3_credentials_dir = Unicode(
        "/etc/sciencelab/s3",
        config=True,
        help="""
        Where the server's S3 `credentials` and `config` files are mounted. Default:
        "/etc/sciencelab/s3". Example: "/home/jovyan/.aws" (boto3's own default place).
        """,
    )

    s3_credentials_source = Enum(
        ["secret", "auth_state"],
        default_value="secret",
        config=True,
        help="""
        Where a user's S3 credentials come from when their profile has buckets.

        "secret" (default): the admin provisions one Secret per user in the hub namespace, named
        by `s3_credentials_secret_template`, with keys `accessKeyID`, `secretAccessKey` and
        optionally `sessionToken`. "auth_state": the authenticator stores them in the user's auth
        state under `s3_auth_state_key` as {"access_key_id", "secret_access_key",
        "session_token" (optional)}, e.g. from an STS exchange at login (needs
        `Authenticator.enable_auth_state`). Either way the spawner copies them into Secrets of the
        server, deleted when it stops; a user without credentials gets a 403 naming the reason.
        Example: "auth_state" with an OIDC authenticator that exchanges the login for S3 keys.
        """,
    )

    s3_credentials_secret_template = Unicode(
        "sciencelab-s3-{username}",
        config=True,
        help="""
        With `s3_credentials_source` "secret": the name of each user's credentials Secret, with
        KubeSpawner's name fields ({username} is the user's safe slug). Default:
        "sciencelab-s3-{username}". Example: "s3-keys-{username}".
        """,
    )

    s3_auth_state_key = Unicode(
        "s3_credentials",
        config=True,
        help="""
        With `s3_credentials_source` "auth_state": the auth state key. Default: "s3_credentials".
        Example: "s3".
        """,
    )

    group_folders = List(
        Unicode(),
        config=True,
        help="""
        JupyterHub groups that get a shared folder: one ReadWriteMany claim per group (created when
        missing, never deleted by a stop), mounted at `group_folders_root`/<group> in the servers
        of the group's members only. Default: [] (none). Example: ["cms-higgs", "gpu-users"].
        """,
    )

    group_folder_storage_class = Unicode(
        "",
        config=True,
        help="""
        The StorageClass of group folders; it must offer ReadWriteMany. Default: "" (the cluster's
        default). Example: "cephfs".
        """,
    )

    group_folder_capacity = Unicode(
        "50Gi",
        config=True,
        help="""
        The size requested for each group folder, as a Kubernetes quantity (bytes, Ki/Mi/Gi/Ti
        suffixes). Default: "50Gi". Example: "1Ti".
        """,
    )

    group_folders_root = Unicode(
        "/srv/groups",
        config=True,
        help="""
        Where group folders are mounted, each at <root>/<group>. Default: "/srv/groups". Example:
        "/home/jovyan/groups".
        """,
    )

    gpu_tolerations = List(
        Dict(),
        default_value=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        config=True,
        help="""
        Tolerations added to pods that get GPUs, so they may go to tainted GPU nodes (a profile's
        own `tolerations` come on top). Default: tolerate the `nvidia.com/gpu` taint, NoSchedule.
        Example: [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}].
        """,
    )

    modify_pod_hook = Callable(
        config=True,
        help="""
        KubeSpawner's hook: a callable `(spawner, pod)`, possibly async, that changes the pod
        object before it is sent and returns it. Here the pod it returns is then checked: a pod
        the hook (or any setting) would make privileged is not started, and the spawn fails
        naming each problem. Default: no hook of the admin's, only the check. Example:
        `lambda spawner, pod: pod` (it must return the pod).
        """,
    )

    # ScienceLab's defaults for KubeSpawner settings: the Jupyter images' user, and a home on a
    # claim of its own (KubeSpawner's storage settings; `storage_pvc_ensure = False` turns it off).
    @default("uid")
    def _default_uid(self):
        return 1000

    @default("gid")
    def _default_gid(self):
        return 100

    @default("fs_gid")
    def _default_fs_gid(self):
        return 100

    @default("storage_pvc_ensure")
    def _default_storage_pvc_ensure(self):
        return True

    @default("storage_capacity")
    def _default_storage_capacity(self):
        return "10Gi"

    @default("volumes")
    def _default_volumes(self):
        return {"home": {"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}}

    @default("volume_mounts")
    def _default_volume_mounts(self):
        return {"home": {"name": "home", "mountPath": "/home/jovyan"}}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._literal_environment: dict[str, str] = {}
        self._s3_credentials: S3Credentials | None = None
        self._profile_pod_settings: PodSettings | None = None
        self.gpu_inventory = shared_gpu_inventory(self.namespace)

    @property
    def kube_site(self) -> KubeSite:
        return KubeSite(
            namespace=self.namespace,
            cvmfs_mode=self.cvmfs_mode,
            cvmfs_storage_class=self.cvmfs_storage_class,
            cvmfs_pvc_name=self.cvmfs_pvc_name,
            cvmfs_host_path=self.cvmfs_host_path,
            s3_mount=self.s3_mount,
            s3_csi_driver=self.s3_csi_driver,
            s3_csi_volume_attributes=self.s3_csi_volume_attributes,
            s3_mount_root=self.s3_mount_root,
            s3_credentials_dir=self.s3_credentials_dir,
            group_folders=frozenset(self.group_folders),
            group_folder_storage_class=self.group_folder_storage_class,
            group_folder_capacity=self.group_folder_capacity,
            group_folders_root=self.group_folders_root,
            gpu_tolerations=tuple(self.gpu_tolerations),
        )

    @property
    def server_identity(self) -> ServerIdentity:
        return ServerIdentity(self.pod_name, self.user.name)

    # --- the form and the GPU check, from the inventory's memory ---

    async def render_options_form(self):
        await self.gpu_inventory.ready()
        return super().render_options_form()

    def gpu_status(self, config: ProfileConfig) -> tuple[dict[str, tuple[int, int]], str | None]:
        if not any(profile.gpu_model for profile in config.profiles):
            return {}, None
        return gpu_status(config, self.gpu_inventory, self._pending_gpu_claims())

    def claim_gpus(self, resolved: ResolvedProfile) -> tuple[str, ...]:
        model = resolved.gpu_model
        if model is None or resolved.runs_on == "slurm":
            return ()  # SLURM allocates a job's GPUs
        if self.gpu_inventory.problem:
            raise GpuInventoryError(
                "gpu_model",
                model.name,
                f"{self.gpu_inventory.problem}; try again in a minute or choose a profile without GPUs",
                problem="cannot be checked",
            )
        available = self.gpu_inventory.ledger.availability(model, self._pending_gpu_claims())
        count = resolved.gpu_count
        if count > available.total:
            raise UserOptionsError(
                "gpu_count",
                count,
                f"the cluster has {available.total} {model.display_name}; ask for at most {available.total}",
                problem="is more than the cluster has",
            )
        if count > available.free:
            raise GpuUnavailableError(
                "gpu_count",
                count,
                f"{available.free} of {available.total} {model.display_name} free in the "
                f"cluster; ask for at most {available.free} or try again when a GPU is released",
                problem="is more than is free",
            )
        if count > available.largest:
            raise GpuUnavailableError(
                "gpu_count",
                count,
                f"{available.free} {model.display_name} are free, but at most "
                f"{available.largest} on one node; ask for at most {available.largest}",
                problem="does not fit on one node",
            )
        return ()

    def _pending_gpu_claims(self) -> list[tuple[GpuModel, int]]:
        """GPUs claimed by other spawns of this hub whose pods the cluster has not placed yet
        (placed pods count through the inventory): what keeps two spawns off the last GPU."""
        pending = []
        for spawner in self._other_claiming_spawners():
            profile = spawner.sciencelab_profile
            if profile is None or profile.gpu_model is None:
                continue
            if not self.gpu_inventory.ledger.is_bound(f"{spawner.namespace}/{spawner.pod_name}"):
                pending.append((profile.gpu_model, spawner.sciencelab_gpu_claim.count))
        return pending

    # --- the spawn ---

    async def start_delegated(self, resolved: ResolvedProfile, hub_spawner: ProfileSpawnerMixin):
        """Start `resolved`'s pod as the delegate of a local hub's spawner (`delegates.py`), which
        resolved and checked the profile. The cluster's scheduler places its GPUs."""
        self.api_token, self.admin_access = hub_spawner.api_token, hub_spawner.admin_access
        self.server_token, self.spawn_auth_state = hub_spawner.server_token, hub_spawner.spawn_auth_state
        self.sciencelab_profile, self.sciencelab_session = resolved, hub_spawner.sciencelab_session
        self.apply_profile(resolved, ())
        if resolved.s3:
            self._s3_credentials = await self._read_s3_credentials()
        return await self.start()

    async def run_pre_spawn_hook(self):
        await self.gpu_inventory.ready()
        accepted_before = self._accepted_options
        # Resolution, quota and GPU claim run without a pause, so racing spawns see each other.
        admin_hook = super().run_pre_spawn_hook()
        if self.sciencelab_profile.s3:
            try:
                self._s3_credentials = await self._read_s3_credentials()
            except SpawnException:
                # Refused after all: these options must not become the ones a spawn without options reuses.
                self._accepted_options = accepted_before
                self._forget_refused_options()
                raise
        return await maybe_future(admin_hook)

    def apply_profile(self, resolved: ResolvedProfile, devices: tuple[str, ...]):
        super().apply_profile(resolved, devices)
        current = {name: getattr(self, name) for name in POD_SETTING_TRAITS}
        settings = make_pod_settings(resolved, self.kube_site, self.server_identity, self.user_groups, current)
        for name, value in settings.traits.items():
            self.set_for_profile(name, value)
        self._literal_environment.update(settings.environment)
        self._profile_pod_settings = settings

    def set_profile_environment(self, environment: dict[str, str]):
        # KubeSpawner formats `environment` values ({username}); the profile's are literal text.
        self._literal_environment = dict(environment)

    def get_env(self):
        env = self.slurm_server_env()
        # The pod spec names the token's Secret; the value never appears in it.
        env.update({name: reference for name, reference in hub_token_environment(self.pod_name).items() if name in env})
        return env

    def slurm_server_env(self) -> dict[str, str]:
        # A SLURM job gets the values themselves: a Secret of the cluster means nothing on its node.
        return {**super().get_env(), **self._literal_environment}

    async def get_pod_manifest(self):
        pod = await super().get_pod_manifest()
        settings = self._profile_pod_settings
        if settings is not None:
            # After KubeSpawner's {username} expansion: the profile's parts are no templates.
            pod.spec.volumes.extend(get_k8s_model(V1Volume, volume) for volume in settings.volumes)
            pod.spec.containers[0].volume_mounts.extend(
                get_k8s_model(V1VolumeMount, mount) for mount in settings.volume_mounts
            )
            pod.metadata.labels.update(settings.labels)
            pod.metadata.annotations = {**(pod.metadata.annotations or {}), **settings.annotations}
        if self.server_token:
            volume, mount = make_server_token_mount(self.pod_name)
            pod.spec.volumes.append(get_k8s_model(V1Volume, volume))
            pod.spec.containers[0].volume_mounts.append(get_k8s_model(V1VolumeMount, mount))
        return pod

    @property
    def server_token_path(self) -> str:
        return SERVER_TOKEN_PATH

    async def write_server_token(self):
        await self._create_or_replace(make_server_token_secret(self.kube_site, self.server_identity, self.server_token))

    async def load_user_options(self):
        """KubeSpawner's first step of `start()`: here, creating what the pod refers to.

        The profile was resolved and applied in `run_pre_spawn_hook` (KubeSpawner's own
        `profile_list` is not used); its shared claims and the server's Secrets, volumes and claims
        must exist before the pod is created.
        """
        resolved = self.sciencelab_profile
        for manifest in make_shared_objects(resolved, self.kube_site, self.user_groups):
            await self._ensure_exists(manifest)
        # The key the hub signs its notices of changed access with (share_watch.py), if it sends them.
        access_key = self.slurm_server_env().get(ACCESS_KEY_ENV, "")
        for manifest in make_server_objects(
            resolved, self.kube_site, self.server_identity, self.api_token, self._s3_credentials, access_key
        ):
            if manifest["kind"] == "Secret":
                await self._create_or_replace(manifest)
            else:
                await self._ensure_exists(manifest)
        if self.server_token:
            await self.write_server_token()

    async def _read_s3_credentials(self) -> S3Credentials:
        buckets = [bucket.name for bucket in self.sciencelab_profile.s3]
        try:
            if self.s3_credentials_source == "auth_state":
                return s3_credentials_from_auth_state(self.spawn_auth_state, self.s3_auth_state_key)
            name = expand_name_template(self, self.s3_credentials_secret_template)
            try:
                secret = await self.api.read_namespaced_secret(name, self.namespace)
            except ApiException as error:
                if error.status != 404:
                    raise
                raise S3CredentialsError(
                    f"there is no S3 credentials Secret {name!r} for you yet; ask your hub admin"
                ) from None
            data = {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
            return s3_credentials_from_secret(data, name)
        except S3CredentialsError as error:
            raise SpawnRefusal(f"s3: {buckets!r} cannot be attached: {error}", reason="s3", status_code=403) from None

    def check_pod(self, pod) -> None:
        """The last look at the pod before it is sent, after the admin's `modify_pod_hook`:
        a SpawnException naming every privilege the hub's settings would give it."""
        manifest = self.api.api_client.sanitize_for_serialization(pod)
        allowed = [self.cvmfs_host_path] if self.cvmfs_mode == "hostpath" else []
        problems = unprivileged_problems(manifest, allowed)
        if problems:
            raise SpawnException(
                "This hub's settings would give the server privileges, so it is not "
                f"started; tell your hub admin: {'; '.join(problems)}",
                reason="privileged",
                status_code=500,
            )

    @default("modify_pod_hook")
    def _default_modify_pod_hook(self):
        return CheckedPodHook()

    @validate("modify_pod_hook")
    def _validate_modify_pod_hook(self, proposal):
        # The admin's hook runs first, then the check: KubeSpawner calls this hook last.
        hook = proposal.value
        return hook if isinstance(hook, CheckedPodHook) else CheckedPodHook(hook)

    async def stop(self, now=False):
        await super().stop(now)
        await self._delete_server_objects()

    def clear_state(self):
        super().clear_state()
        self._literal_environment = {}
        self._s3_credentials = None
        self._profile_pod_settings = None

    # --- objects besides the pod ---

    def _verb(self, verb: str, kind: str):
        """The client call `verb` ("create", "read", ...) for `kind`, with its namespace bound."""
        if kind in NAMESPACED:
            method = getattr(self.api, f"{verb}_{NAMESPACED[kind]}")
            return lambda *args, **kwargs: method(*args, namespace=self.namespace, **kwargs)
        return getattr(self.api, f"{verb}_{CLUSTER_SCOPED[kind]}")

    async def _create_or_replace(self, manifest: dict):
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        try:
            await self._verb("create", kind)(body=manifest)
            self.log.info("Created %s %s for %s", kind, name, self.server_log_name)
        except ApiException as error:
            if error.status != 409:
                raise
            await self._verb("replace", kind)(name=name, body=manifest)
            self.log.info("Updated %s %s for %s", kind, name, self.server_log_name)

    async def _ensure_exists(self, manifest: dict):
        """Create `manifest` unless it exists; wait out one of the same name that is being deleted."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        deadline = time.monotonic() + TERMINATING_WAIT
        while True:
            try:
                await self._verb("create", kind)(body=manifest)
                self.log.info("Created %s %s for %s", kind, name, self.server_log_name)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
            try:
                existing = await self._verb("read", kind)(name=name)
            except ApiException as error:
                if error.status == 404:
                    continue  # deleted meanwhile: create it
                raise
            if existing.metadata.deletion_timestamp is None:
                return
            if time.monotonic() > deadline:
                raise SpawnException(
                    f"{kind} {name} of the same name is still being deleted after {TERMINATING_WAIT}s; try again later",
                    reason="terminating",
                )
            await asyncio.sleep(1)

    async def _delete_server_objects(self):
        """Delete what `load_user_options` created for this server alone, found by its label."""
        selector = f"{SERVER_LABEL}={self.pod_name}"
        for kind, extra in (
            ("Secret", ""),
            ("PersistentVolumeClaim", ""),
            ("PersistentVolume", f",{NAMESPACE_LABEL}={self.namespace}"),
        ):
            listing = await self._verb("list", kind)(label_selector=selector + extra)
            for item in listing.items:
                try:
                    await self._verb("delete", kind)(name=item.metadata.name)
                    self.log.info("Deleted %s %s of %s", kind, item.metadata.name, self.server_log_name)
                except ApiException as error:
                    if error.status != 404:
                        raise
