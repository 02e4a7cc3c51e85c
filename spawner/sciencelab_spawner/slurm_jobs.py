"""Profiles that run JupyterLab as a SLURM job (`runs_on: slurm`), beside the hub's own spawner.

`make_slurm_script` is pure: the job script from the resolved profile, where every user value is a
checked number or an admin-listed name. `SlurmJobSpawner` builds on batchspawner's `SlurmSpawner`
(its `squeue`/`scancel` commands, job states and the `batchspawner-singleuser` wrapper that reports
the server's port to the hub) with this script and a start that reports the queue's reason.
`SlurmProfilesMixin` makes such a job the delegate of a profile spawner's `runs_on: slurm` spawns
(`delegates.py`).
"""

import asyncio
import math
import os
import re
import shlex
import time
from collections.abc import Sequence

from batchspawner.batchspawner import JobStatus, SlurmSpawner, format_template
from traitlets import Dict, Float, List, Unicode
from traitlets.config import Configurable

from .profile_config import Size
from .profile_spawner import SpawnRefusal
from .user_options import ResolvedProfile, SlurmJob

# What may stand in an `#SBATCH` line unquoted: paths the hub builds from its own settings.
SAFE_PATH = re.compile(r"^[A-Za-z0-9_./@+%-]+$")


class SlurmScriptError(ValueError):
    """The job cannot be described to SLURM (a path with characters an `#SBATCH` line cannot hold)."""


def make_slurm_script(
    *,
    job: SlurmJob,
    job_name: str,
    walltime: int,
    gpu_count: int,
    gpu_gres: str | None,
    size: Size | None,
    workdir: str,
    command: Sequence[str],
) -> str:
    """The batch script of a `runs_on: slurm` server. `walltime` in seconds (the profile's lifetime),
    `command` the server's command line; the job inherits the submitting environment (`--export=ALL`).
    """
    for name, path in (("job name", job_name), ("working directory", workdir)):
        if not SAFE_PATH.match(path):
            raise SlurmScriptError(f"the {name} {path!r} has characters an #SBATCH line cannot hold")
    options = [
        f"--job-name={job_name}",
        f"--chdir={workdir}",
        f"--output={workdir}/.sciencelab-slurm-%j.log",
        f"--time={math.ceil(walltime / 60)}",
        "--export=ALL",
    ]
    options += [f"--{name}={value}" for name in ("partition", "account", "qos") if (value := getattr(job, name))]
    if gpu_count:
        options.append(f"--gres=gpu:{gpu_gres}:{gpu_count}" if gpu_gres else f"--gres=gpu:{gpu_count}")
    if size is not None and size.cpu_limit is not None:
        options.append(f"--cpus-per-task={math.ceil(size.cpu_limit)}")
    if size is not None and size.mem_limit is not None:
        options.append(f"--mem={math.ceil(size.mem_limit / 1024**2)}M")
    lines = ["#!/bin/bash", *(f"#SBATCH {option}" for option in options), "", "set -euo pipefail"]
    if job.modules:
        lines.append("module load " + " ".join(job.modules))
    lines += job.setup
    run = [*(["apptainer", "exec", "--nv", job.container] if job.container else []), *command]
    lines.append("exec " + " ".join(shlex.quote(part) for part in run))
    return "\n".join(lines) + "\n"


def describe_job(job_id: str, job_status: str) -> str:
    """The spawn page's line for a job whose `squeue -o '%T|%r|%B'` answer is `job_status`."""
    state, _, rest = job_status.partition("|")
    reason, _, node = rest.partition("|")
    if not job_id:
        return "Submitting the SLURM job"
    if state in ("PENDING", "CONFIGURING"):
        return f"SLURM job {job_id} is waiting in the queue (reason: {reason or 'none given'})"
    if state in ("RUNNING", "COMPLETING"):
        return f"SLURM job {job_id} runs on {node}; JupyterLab is starting"
    return f"SLURM job {job_id}: {state or 'no answer from squeue yet'}"


class SlurmJobSpawner(SlurmSpawner):
    """One server's SLURM job: batchspawner's `SlurmSpawner` with ScienceLab's script and start.

    Made by `SlurmProfilesMixin` for each `runs_on: slurm` spawn, as the hub spawner's delegate,
    and configured as `c.SlurmJobSpawner` (`exec_prefix`, `node_addresses`, `pending_timeout`,
    `job_environment`).
    """

    # The reason and the node: `describe_job` and `state_gethost` read them.
    batch_query_cmd = Unicode("squeue -h -j {job_id} -o '%T|%r|%B'").tag(config=True)
    state_exechost_re = Unicode(r"\|([^|]+)$").tag(config=True)

    node_addresses = Dict(
        config=True,
        help="""
        The address the hub reaches a SLURM node at, by node name, where the name is not resolvable
        (`scontrol show node` lists each node's NodeAddr).

        Default: {} (the node name is the address). Example: {"gpu-node-01": "10.1.0.11"}.
        """,
    )
    pending_timeout = Float(
        600,
        config=True,
        help="""
        Seconds a job may wait in the queue before the spawn gives up, cancels it and says why
        (SLURM's pending reason). Keep it below the spawner's `start_timeout`.

        Default: 600. Example: 60 for a partition that starts jobs at once or not at all.
        """,
    )
    job_environment = Dict(
        config=True,
        help="""
        Environment variables `sbatch`, `squeue` and `scancel` need (and jobs inherit), beside the
        server's own: typically `SLURM_CONF` and `PATH` where the SLURM commands are.

        Default: {}. Example: {"SLURM_CONF": "/etc/slurm/slurm.conf"}.
        """,
    )
    job_command = List(
        Unicode(),
        ["batchspawner-singleuser", "jupyterhub-singleuser"],
        config=True,
        help="""
        The command the job runs, before the server's arguments: batchspawner's wrapper, which
        reports the server's port to the hub, then the single-user server.

        Default: ["batchspawner-singleuser", "jupyterhub-singleuser"]. Use absolute paths where the
        job's PATH lacks them.
        """,
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The server's environment, as the hub's spawner made it: literal values only.
        self.server_env: dict[str, str] = {}

    def get_env(self):
        return {**self.server_env, **self.job_environment}

    async def run_command(self, cmd, input=None, env=None):
        # batchspawner queries and cancels with the hub's own environment: add `job_environment`
        # (SLURM_CONF) so that squeue and scancel find the cluster sbatch submitted to.
        return await super().run_command(cmd, input=input, env=env or {**os.environ, **self.job_environment})

    def state_gethost(self):
        host = super().state_gethost()
        return self.node_addresses.get(host, host)

    async def submit(self, script: str):
        """`sbatch` the script; a refusal raises `RuntimeError` with SLURM's words."""
        command = " ".join(
            filter(
                None,
                (format_template(self.exec_prefix, username=self.user.name), self.batch_submit_cmd),
            )
        )
        self.log.info("Submitting %s's server as a SLURM job", self.user.name)
        output = await self.run_command(command, input=script, env=self.get_env())
        self.job_id = self.parse_job_id(output)

    async def wait_until_running(self) -> str:
        """Poll the job until it runs; returns its node's address. Raises `RuntimeError` saying why
        when it ends first or waits longer than `pending_timeout` (then it is cancelled)."""
        since = time.monotonic()
        while True:
            status = await self.query_job_status()
            if status == JobStatus.RUNNING:
                return self.state_gethost()
            if status == JobStatus.PENDING and time.monotonic() - since > self.pending_timeout:
                reason = describe_job(self.job_id, self.job_status)
                await self.cancel_batch_job()
                raise RuntimeError(f"{reason} after {self.pending_timeout:.0f} s; the job was cancelled")
            if status == JobStatus.NOTFOUND:
                raise RuntimeError(
                    f"SLURM job {self.job_id} ended before JupyterLab started; its log is "
                    f".sciencelab-slurm-{self.job_id}.log in the job's working directory"
                )
            await asyncio.sleep(self.startup_poll_interval)

    async def start_delegated(self, resolved: ResolvedProfile, hub_spawner: "SlurmProfilesMixin"):
        """Submit `resolved`'s job for `hub_spawner` and wait until its server listens."""
        # The job's server listens where the hub can reach it; batchspawner's wrapper picks the port.
        hub_spawner.ip, hub_spawner.port = self.ip, 0
        self.server_env = hub_spawner.slurm_server_env()
        try:
            script = hub_spawner.make_job_script(resolved, self)
        except SlurmScriptError as error:
            raise SpawnRefusal(
                f"This server cannot be submitted to SLURM: {error}", reason="slurm", status_code=503
            ) from None
        try:
            await self.submit(script)
        except RuntimeError as error:
            raise SpawnRefusal(f"SLURM refused the job: {error}", reason="slurm", status_code=503) from None
        try:
            ip = await self.wait_until_running()
        except RuntimeError as error:
            raise SpawnRefusal(str(error), reason="slurm", status_code=503) from None
        # batchspawner's API handler sets the port its wrapper reports on the hub's spawner.
        while hub_spawner.port == 0:
            await asyncio.sleep(self.startup_poll_interval)
        self.log.info(
            "%s runs as SLURM job %s on %s:%s", hub_spawner.server_log_name, self.job_id, ip, hub_spawner.port
        )
        return ip, hub_spawner.port

    async def progress(self):
        shown = None
        while True:
            line = describe_job(self.job_id, self.job_status)
            if line != shown:
                shown = line
                yield {"message": line}
            await asyncio.sleep(1)


class SlurmProfilesMixin(Configurable):
    """Makes the delegates of `runs_on: slurm` spawns: SLURM jobs (`SlurmJobSpawner`). Mix in
    beside `DelegatingSpawnerMixin` and list `make_slurm_job` in its `delegate_makers`."""

    slurm_workdir_template = Unicode(
        "/home/{username}",
        config=True,
        help="""
        The working directory of `runs_on: slurm` jobs, where their log goes too; `{username}` is
        the hub user name. The cluster's nodes must have it.

        Default: "/home/{username}" (the local spawner uses the user's home, or `home_dir_template`
        with `run_as_hub_user`). Example: "/scratch/{username}".
        """,
    )

    def make_slurm_job(self) -> SlurmJobSpawner:
        # batchspawner looks the home up as a system account unless told.
        return SlurmJobSpawner(**self.delegate_arguments(), req_username=self.user.name, req_homedir=self.slurm_workdir)

    def slurm_server_env(self) -> dict[str, str]:
        """The server's environment, as the job gets it: literal values only."""
        return self.get_env()

    @property
    def slurm_workdir(self) -> str:
        """The job's working directory."""
        return self.slurm_workdir_template.format(username=self.user.name)

    def make_job_script(self, resolved: ResolvedProfile, job: SlurmJobSpawner) -> str:
        """The batch script of this spawn (`make_slurm_script`)."""
        return make_slurm_script(
            job=resolved.slurm,
            job_name=f"sciencelab-{re.sub(r'[^A-Za-z0-9_.-]', '-', self.user.name)[:40]}",
            walltime=resolved.session.lifetime,
            gpu_count=resolved.gpu_count,
            gpu_gres=resolved.gpu_model.slurm_gres if resolved.gpu_model else None,
            size=resolved.size,
            workdir=self.slurm_workdir,
            command=[*job.job_command, *self.get_args()],
        )
