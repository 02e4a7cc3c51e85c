"""Local-process spawner with profiles: the embedded (laptop) mode and the demo hub."""

import os
import pwd
import shutil
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import maybe_future
from traitlets import Bool, Unicode

from .delegates import DelegatingSpawnerMixin
from .local_gpus import LocalGpuInventory, local_gpu_status, pick_gpus, shared_local_inventory
from .profile_config import ProfileConfig, ProfileConfigError
from .profile_record import NotApplied
from .profile_spawner import ProfileSpawnerMixin
from .server_token import write_private_file
from .slurm_jobs import SlurmProfilesMixin
from .user_options import ResolvedProfile

# Dask's `temporary-directory` setting, where its workers and schedulers keep `dask-scratch-space`.
DASK_TEMP_DIR_ENV = "DASK_TEMPORARY_DIRECTORY"


class LocalProfileSpawner(ProfileSpawnerMixin, DelegatingSpawnerMixin, SlurmProfilesMixin, LocalProcessSpawner):
    """Starts each user's JupyterLab as a local process, with a profile from the allowlist; as a
    SLURM job for `runs_on: slurm` profiles (`slurm_jobs.py`; configured as `c.SlurmJobSpawner`);
    with `kubernetes_profiles`, as a pod for `runs_on: kubernetes` profiles (configured as
    `c.KubeProfileSpawner`).

    With `run_as_hub_user` (the embedded mode) every server runs as the hub's own OS account, so
    hub users such as `alice` need no system account; otherwise it switches to the system user of
    the same name, as JupyterHub's `LocalProcessSpawner` does.

    In the embedded mode each server also has its own Dask temporary directory, as a pod has its
    own `/tmp`: the `dask-scratch-space` of its clusters' workers (and of clusters its kernels
    start) is removed when the server stops, even one that was killed, instead of piling up in the
    machine's shared `/tmp/dask-scratch-space`. Only Dask's: a `TMPDIR` this deep would break
    multiprocessing's fork server, whose socket path must stay under 108 bytes.
    """

    not_applied = NotApplied(
        ("image", "size", "cvmfs", "s3"),
        "only on Kubernetes",
        "This hub runs each server as a local process, without a container: the image, CVMFS "
        "repositories and S3 buckets apply only on Kubernetes, and CPU and memory limits are not "
        "enforced.",
    )

    spawner_kind = "local"

    kubernetes_profiles = Bool(
        False,
        config=True,
        help="""
        Start the servers of `runs_on: kubernetes` profiles as pods, each through a
        `KubeProfileSpawner` of its own, configured as `c.KubeProfileSpawner` (namespace, image,
        storage; the hub's address as the pods reach it, `hub_connect_url`). The hub reaches the
        cluster as KubeSpawner does: in-cluster, or through `KUBECONFIG`. The cluster's scheduler
        places these servers' GPUs; the spawn form does not count them.

        Default: False (such profiles are refused, naming what this hub starts). Example: True on a
        hub on an HPC login node that offers local, SLURM and Kubernetes profiles in one list.
        """,
    )

    run_as_hub_user = Bool(
        False,
        config=True,
        help="""
        Run every user's server as the OS account that runs the hub, in `home_dir_template`,
        instead of switching to a system account named after the hub user.

        Default: False. Use it on a laptop or in tests, where hub users are not system accounts;
        it gives no isolation between users, so never on a shared machine.
        """,
    )

    home_dir_template = Unicode(
        "~/.sciencelab/home/{username}",
        config=True,
        help="""
        With `run_as_hub_user`: each user's home and working directory; `{username}` is replaced
        by the hub user name and a leading `~` by the hub account's home.

        Default: "~/.sciencelab/home/{username}". Example: "/scratch/sciencelab/{username}".
        """,
    )

    @property
    def runs_on_kinds(self) -> frozenset[str]:
        return frozenset({"local", *self.delegate_makers()})

    def delegate_makers(self):
        makers = {"slurm": self.make_slurm_job}
        if self.kubernetes_profiles:
            makers["kubernetes"] = self.make_pod_server
        return makers

    def make_pod_server(self):
        from .kube import KubeProfileSpawner  # the Kubernetes client loads only on hubs that start pods

        return KubeProfileSpawner(**self.delegate_arguments())

    @property
    def user_home(self) -> str:
        return os.path.expanduser(self.home_dir_template.format(username=self.user.name))

    @property
    def slurm_workdir(self) -> str:
        return self.user_home if self.run_as_hub_user else pwd.getpwnam(self.user.name).pw_dir

    @property
    def dask_temp_dir(self) -> str:
        """With `run_as_hub_user`: this server's Dask `temporary-directory`, in the user's home (one
        per named server)."""
        return os.path.join(self.user_home, f".dask-tmp-{self.name}" if self.name else ".dask-tmp")

    def make_preexec_fn(self, name):
        if not self.run_as_hub_user:
            return super().make_preexec_fn(name)
        home, dask_temp_dir = self.user_home, self.dask_temp_dir

        def preexec():
            os.makedirs(home, 0o700, exist_ok=True)
            os.makedirs(dask_temp_dir, 0o700, exist_ok=True)
            os.chdir(home)

        return preexec

    def user_env(self, env):
        if not self.run_as_hub_user:
            return super().user_env(env)
        env["USER"] = self.user.name
        env["HOME"] = self.user_home
        env.setdefault(DASK_TEMP_DIR_ENV, self.dask_temp_dir)  # unless the admin's `environment` sets it
        return env

    async def start(self):
        if self.run_as_hub_user:
            os.makedirs(self.user_home, 0o700, exist_ok=True)  # a SLURM job starts in it, too
            shutil.rmtree(self.dask_temp_dir, ignore_errors=True)  # left by a server killed with the hub
        if self.server_token:
            await self.write_server_token()
        return await super().start()

    async def stop(self, now=False):
        await super().stop(now=now)
        if self.run_as_hub_user:
            shutil.rmtree(self.dask_temp_dir, ignore_errors=True)
        if self.server_token:
            # Only then: the path needs the user's system account, which a never-started server may lack.
            Path(self.server_token_path).unlink(missing_ok=True)

    @property
    def server_token_path(self) -> str:
        home = self.user_home if self.run_as_hub_user else pwd.getpwnam(self.user.name).pw_dir
        return os.path.join(home, ".sciencelab", f"token-{self.name}" if self.name else "token")

    async def write_server_token(self):
        if self.run_as_hub_user:
            write_private_file(Path(self.server_token_path), self.server_token)
        else:
            account = pwd.getpwnam(self.user.name)
            write_private_file(Path(self.server_token_path), self.server_token, account.pw_uid, account.pw_gid)

    def get_args(self):
        args = super().get_args()
        if self.run_as_hub_user and os.geteuid() == 0:
            # Jupyter Server refuses root unless told; a hub started as root (CI, containers)
            # would otherwise fail every spawn. A new list: JupyterHub returns `self.args` itself.
            args = [*args, "--ServerApp.allow_root=True"]
        return args

    @property
    def gpu_inventory(self) -> LocalGpuInventory:
        return shared_local_inventory()

    # --- the form and the GPU check: NVML read off the event loop first, then answered from it ---

    def offers_gpus(self) -> bool:
        try:
            return any(profile.gpu_model for profile in self.profile_config.profiles)
        except ProfileConfigError:
            return False  # the spawn is refused saying why, without GPUs to count

    async def render_options_form(self):
        if self.offers_gpus():
            await self.gpu_inventory.current()
        return super().render_options_form()

    async def run_pre_spawn_hook(self):
        if self.offers_gpus():
            await self.gpu_inventory.current()
        # Resolution, quota and GPU claim run without a pause, so racing spawns see each other.
        return await maybe_future(super().run_pre_spawn_hook())

    def claim_gpus(self, resolved: ResolvedProfile) -> tuple[str, ...]:
        if resolved.gpu_model is None or resolved.runs_on not in (None, "local"):
            return ()  # SLURM or the cluster's scheduler places them
        inventory = self.gpu_inventory.latest
        return pick_gpus(inventory, resolved.gpu_model, resolved.gpu_count, self.claimed_gpu_devices())

    def gpu_status(self, config: ProfileConfig) -> tuple[dict[str, tuple[int, int]], str | None]:
        if not any(profile.gpu_model for profile in config.profiles):
            return {}, None
        return local_gpu_status(config, self.gpu_inventory.latest, self.claimed_gpu_devices())

    def apply_profile(self, resolved: ResolvedProfile, devices: tuple[str, ...]):
        super().apply_profile(resolved, devices)
        # Every server sees only its own GPUs; an empty value hides all of them. SLURM sets a job's.
        extra = {} if resolved.runs_on == "slurm" else {"CUDA_VISIBLE_DEVICES": ",".join(devices)}
        if resolved.image is not None:
            # What KubeSpawner sets in the container; here only a record of the admin's image.
            extra["JUPYTER_IMAGE"] = extra["JUPYTER_IMAGE_SPEC"] = resolved.image.image
        self.set_for_profile("environment", {**self.environment, **extra})
