"""Spawn-to-ready on SLURM: a `runs_on: slurm` profile against batchspawner's SlurmSpawner used directly.

Starts the test tier's single-node SLURM cluster (tests/batch/slurm.py) and two real demo hubs
(`sciencelab demo`, tests/demo_hub.py) that differ only in the spawner that submits JupyterLab:

- ours: the hub's default `LocalProfileSpawner` with a `runs_on: slurm` profile (lifetime 1h,
  partition debug), which hands the spawn to `SlurmJobSpawner` (spawner/sciencelab_spawner/slurm_jobs.py);
- peer: `c.JupyterHub.spawner_class` set to batchspawner's `SlurmSpawner`, configured alike:
  partition debug, walltime 1:00:00, no exec prefix (the hub is root, jobs run as root), SLURM_CONF
  through the hub's environment (squeue, scancel) and `environment` (sbatch, `--export`), the same
  absolute `batchspawner-singleuser` and `jupyterhub-singleuser`, the node's name mapped to 127.0.0.1
  with `state_exechost_exp`, `--ServerApp.allow_root=True`. Its own batch script, as shipped: srun
  works on the test cluster, so the default `req_srun` ("srun") stays.
  The demo's users have no system accounts, which batchspawner's `UserEnvMixin` reads (HOME, SHELL,
  and the job's directory); the peer is a subclass that takes them from the hub's home directory
  template instead, as ours does, and changes nothing else.

Both hubs use the same cluster, Python, JupyterLab and proxy. One spawn: `POST
/hub/api/users/alice/servers/bench` until the server model is ready (timed: spawn-to-ready), then
`DELETE` and wait until the SLURM queue is empty (timed apart: stop-to-empty-queue). Phases of
`--spawns` spawns alternate, ours then the peer's, the next round the other way round (ABBA), so
drift of a busy machine hits both alike. Goal: ours / peer <= 1.1.

Needs `make .stamps/slurm` and root. Run with `make bench-slurm` (BENCH_ARGS="--rounds 6" for more
rounds). `--smoke` (what `make test` runs) checks that it still works: one spawn each, no warm-up,
both ready and the queue empty after; figures meaningless.
"""

import argparse
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.batch import wait_until
from tests.batch.slurm import NODE_NAME, PARTITION, SlurmCluster
from tests.demo_hub import DemoHub

VENV_BIN = Path(sys.executable).parent
USER = "alice"
SERVER = "bench"
QUEUE_TIMEOUT = 60  # seconds for a cancelled job to leave the queue (KillWait is 5 s)
OURS, PEER = "ScienceLab runs_on: slurm", "batchspawner SlurmSpawner"

PROFILES = textwrap.dedent(f"""
    profiles:
      - slug: hpc
        display_name: JupyterLab on the cluster
        default: true
        runs_on: slurm
        lifetime: 1h
        slurm:
          partition: {PARTITION}
""")


def ours_config(slurm_conf: Path) -> str:
    """The demo hub's SLURM settings, as tests/test_slurm_hub.py has them."""
    return textwrap.dedent(f"""
        c.SlurmJobSpawner.exec_prefix = ""
        c.SlurmJobSpawner.node_addresses = {{{NODE_NAME!r}: "127.0.0.1"}}
        c.SlurmJobSpawner.job_environment = {{"SLURM_CONF": {str(slurm_conf)!r}}}
        c.SlurmJobSpawner.job_command = [{str(VENV_BIN / "batchspawner-singleuser")!r},
                                         {str(VENV_BIN / "jupyterhub-singleuser")!r}]
    """)


def peer_config(slurm_conf: Path, homes: Path) -> str:
    """The same demo hub with batchspawner's SlurmSpawner as its spawner class."""
    return textwrap.dedent(f"""
        import os
        from batchspawner import SlurmSpawner
        from traitlets import default


        class SlurmSpawnerWithoutAccounts(SlurmSpawner):
            # The demo's users have no system accounts for UserEnvMixin's pwd.getpwnam: the same
            # values from the hub's home directory template.
            @default("req_homedir")
            def _homedir_of_the_hub(self):
                return os.path.join({str(homes)!r}, self.user.name)

            def user_env(self, env):
                env.update(USER=self.user.name, HOME=self.req_homedir, SHELL="/bin/bash")
                return env


        c.JupyterHub.spawner_class = SlurmSpawnerWithoutAccounts
        c.SlurmSpawner.exec_prefix = ""
        c.SlurmSpawner.req_partition = {PARTITION!r}
        c.SlurmSpawner.req_runtime = "1:00:00"
        c.SlurmSpawner.environment = {{"SLURM_CONF": {str(slurm_conf)!r}}}
        c.SlurmSpawner.batchspawner_singleuser_cmd = {str(VENV_BIN / "batchspawner-singleuser")!r}
        c.SlurmSpawner.cmd = [{str(VENV_BIN / "jupyterhub-singleuser")!r}]
        # squeue prints the node's name, which does not resolve here: the address in its place.
        c.SlurmSpawner.state_exechost_exp = "127.0.0.1"
        if os.geteuid() == 0:
            c.SlurmSpawner.args = ["--ServerApp.allow_root=True"]
    """)


def spawn_to_ready(hub: DemoHub, slurm: SlurmCluster, user_options: dict) -> tuple[float, float]:
    """(spawn-to-ready, stop-to-empty-queue) in seconds of one server, which runs as one SLURM job."""
    start = time.perf_counter()
    response = hub.spawn(USER, user_options, SERVER)  # returns once the server model is ready
    ready = time.perf_counter() - start
    if response.status_code not in (201, 202):
        raise RuntimeError(f"spawn answered {response.status_code} {response.text}:\n{hub.log_tail()}")
    jobs = slurm.jobs()
    if [job["state"] for job in jobs] != ["RUNNING"]:
        raise RuntimeError(f"a ready server, but the SLURM queue holds {jobs}:\n{hub.log_tail()}")
    start = time.perf_counter()
    hub.stop_server(USER, SERVER)
    if hub.server_model(USER, SERVER) is not None:
        raise RuntimeError(f"{USER}'s server did not stop:\n{hub.log_tail()}")
    wait_until(lambda: not slurm.jobs(), QUEUE_TIMEOUT, "the stopped server's job leaving the queue")
    return ready, time.perf_counter() - start


def seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one phase per spawner (default: 3)")
    parser.add_argument("--spawns", type=int, default=3, help="spawns per phase (default: 3)")
    parser.add_argument("--smoke", action="store_true", help="check that it runs: one spawn each, figures meaningless")
    args = parser.parse_args()
    rounds, spawns = (1, 1) if args.smoke else (args.rounds, args.spawns)

    slurm = SlurmCluster()
    hubs: dict[str, DemoHub] = {}
    # label -> one list of (spawn-to-ready, stop-to-empty-queue) per phase
    phases: dict[str, list[list[tuple[float, float]]]] = {OURS: [], PEER: []}
    user_options = {OURS: {"profile": "hpc"}, PEER: {}}
    # Outside the try: the hubs stop before their state directories go.
    with tempfile.TemporaryDirectory(prefix="sciencelab-bench-slurm-") as tmp:
        try:
            start = time.perf_counter()
            slurm.start()
            print(f"SLURM cluster started (a probe job run) in {time.perf_counter() - start:.1f} s", flush=True)
            env = {"SLURM_CONF": str(slurm.config)}
            peer_homes = Path(tmp) / "peer" / "home"
            (peer_homes / USER).mkdir(parents=True)  # a site's homes exist before the first spawn
            hubs[OURS] = DemoHub(Path(tmp) / "ours", ours_config(slurm.config), profiles=PROFILES, env=env)
            hubs[PEER] = DemoHub(Path(tmp) / "peer", peer_config(slurm.config, peer_homes), profiles=PROFILES, env=env)
            for label, hub in hubs.items():
                start = time.perf_counter()
                hub.start()
                print(f"{label} hub started in {time.perf_counter() - start:.1f} s", flush=True)
                if not args.smoke:
                    spawn_to_ready(hub, slurm, user_options[label])  # warm-up: imports, disk caches
            for round_ in range(rounds):
                order = list(hubs) if round_ % 2 == 0 else list(reversed(hubs))
                for label in order:
                    phases[label].append(
                        [spawn_to_ready(hubs[label], slurm, user_options[label]) for _ in range(spawns)]
                    )
                print(
                    f"round {round_ + 1} ({' then '.join(order)}): "
                    + "; ".join(f"{label} {seconds([ready for ready, _ in phases[label][-1]])} s" for label in hubs),
                    flush=True,
                )
            for hub in hubs.values():
                hub.check_log()
        finally:
            for hub in hubs.values():
                hub.stop()
            slurm.stop()
            slurm.cleanup()

    median_ready, phase_medians = {}, {}
    for label, runs in phases.items():
        phase_medians[label] = [statistics.median(ready for ready, _ in phase) for phase in runs]
        median_ready[label] = statistics.median(ready for phase in runs for ready, _ in phase)
        stop = statistics.median(stop for phase in runs for _, stop in phase)
        print(
            f"{label}: spawn-to-ready median {median_ready[label]:.2f} s over {spawns * rounds} spawns "
            f"(phase medians: {seconds(phase_medians[label])} s); stop-to-empty-queue median {stop:.2f} s"
        )
    # Each round's two phases ran back to back, so their ratio cancels slow drift of the machine.
    paired = statistics.median(a / b for a, b in zip(phase_medians[OURS], phase_medians[PEER], strict=True))
    print(
        f"ours / batchspawner: ratio of medians {median_ready[OURS] / median_ready[PEER]:.3f}, "
        f"median of per-round ratios {paired:.3f} (goal <= 1.1)"
    )


if __name__ == "__main__":
    main()
