"""Every benchmark of bench/ in its smoke mode, so that a benchmark that breaks fails `make test`.

Each runs as its `make bench*` target runs it, as a subprocess with its own servers, pools and
peers, but with tiny sizes and one round (`--smoke`): the test checks that it exits 0 and prints
its result lines, the ratio against the peer it replaces where it has one. A smoke run's figures
mean nothing; the full benchmarks stay manual. Missing peers (`make test` installs them, see
bench/peers.py) or batch systems skip a test, or fail it under CI=true.
"""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.peers import NVDASHBOARD_PATH, peers_missing

from .batch import BatchSystemMissing
from .batch.htcondor import HTCondorPool
from .batch.slurm import SlurmCluster
from .k8s.cluster import KubeCluster
from .prerequisites import require

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
# A smoke run takes seconds to a minute; one that hangs is stopped well before CI's own limit.
TIMEOUT = 300
# Seconds a benchmark stopped by SIGINT gets to stop its servers (its `finally` blocks) before SIGKILL.
STOP_GRACE = 60
RATIO = r"\d+\.\d{3}"


def run_smoke(command: list[str], cwd: Path = REPO, env: dict | None = None) -> str:
    """Run a benchmark's smoke mode to its end and return what it printed (stdout and stderr).

    Fails the test, with the output's tail, when it exits non-zero or runs past TIMEOUT.
    """
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"{' '.join(command)} ran past {TIMEOUT} s:\n{output[-6000:]}", pytrace=False)
    if process.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {process.returncode}:\n{output[-6000:]}", pytrace=False)
    return output


def python_smoke(script: str, *args: str) -> str:
    return run_smoke([sys.executable, str(BENCH / script), "--smoke", *args])


def assert_lines(output: str, *patterns: str):
    """Each pattern matches a whole line of `output`."""
    missing = [pattern for pattern in patterns if not re.search(f"^{pattern}$", output, re.MULTILINE)]
    assert not missing, f"no line matches {missing} in:\n{output[-6000:]}"


def batch_systems_missing(*systems) -> str | None:
    """Why one of `systems` (HTCondorPool, SlurmCluster) cannot run here, None when all can."""
    try:
        for system in systems:
            system.check_installed()
    except BatchSystemMissing as missing:
        return str(missing)
    return None


@pytest.mark.hub
def test_spawn_to_ready():
    assert_lines(
        python_smoke("spawn_to_ready.py"),
        rf"ratio of medians \(ours / JupyterHub's\): {RATIO}",
        rf"median of per-round ratios: {RATIO}  \(goal <= 1\.05\)",
    )


@pytest.mark.hub
def test_share_revocation():
    """Asserts, in the benchmark, that ours met the 5 s bound (the CPU budget only in a full run)."""
    assert_lines(
        python_smoke("share_revocation.py"),
        rf"revoked guest's HTTP 403: ours \d+\.\d\d s, stock JupyterHub .*; ours / stock {RATIO}.*",
        rf"revoked guest's kernel socket closed: ours \d+\.\d\d s, stock JupyterHub .*; ours / stock {RATIO}.*",
        r"refused guest's HTTP 200 after a share: ours \d+\.\d\d s, .*",
        r"hub CPU, 3 servers idle: .* \(budget 5 %\); notices while idle: 0",
        r"one change reaching 3 servers \(bob leaves a shared group\): 3 notices, .*",
        rf"hub CPU, the same servers each polling the hub every 5 s instead: .*; ours idle / polling ({RATIO}|n/a .*)",
    )


def test_profiles():
    # Pure functions with no peer to replace: the figures alone.
    assert_lines(
        python_smoke("profiles.py"),
        r"resolve a spawn \(accepted\): median \d+\.\d\d ms, max \d+\.\d\d ms",
        r"render the spawn form: median \d+\.\d\d ms, max \d+\.\d\d ms",
    )


@pytest.mark.k8s
def test_kube_spawner(cluster_of_its_own):
    """Its spawn-to-ready runs on a test cluster of its own (one per host): the session's stops first."""
    require(KubeCluster.missing())
    output = python_smoke("kube_spawner.py")
    assert_lines(
        output,
        rf"   ratio of medians \(ours / stock\): {RATIO}; median of per-round ratios: {RATIO} \(goal <= 1\.0\)",
        r"   Kubernetes API requests per render: \d+(\.\d+)? \(goal 0\)",
        rf"   ratio of medians \(ours / stock\): {RATIO}; median of per-round ratios: {RATIO}",
    )


@pytest.mark.htcondor
@pytest.mark.slurm
def test_batch_pools():
    require(batch_systems_missing(HTCondorPool, SlurmCluster))
    assert_lines(
        python_smoke("batch_pools.py"),
        rf"HTCondor ours / HTCondorCluster: ratio of medians {RATIO}, median of per-round ratios {RATIO} \(goal <= 1\.1\)",
        rf"SLURM ours / SLURMCluster: ratio of medians {RATIO}, median of per-round ratios {RATIO} \(goal <= 1\.1\)",
        r"HTCondor, 5 idle jobs: a state refresh \(GET of the cluster\) median \d+ ms; its one condor_q alone .*",
        r"SLURM, 5 held jobs: a state refresh \(GET of the cluster\) median \d+ ms; its one squeue alone .*",
    )


@pytest.mark.hub
@pytest.mark.slurm
def test_slurm_spawn():
    """Asserts, in the benchmark, that both servers got ready and the queue was empty after each."""
    require(batch_systems_missing(SlurmCluster))
    assert_lines(
        python_smoke("slurm_spawn.py"),
        r"ScienceLab runs_on: slurm: spawn-to-ready median \d+\.\d\d s over 1 spawns .*",
        r"batchspawner SlurmSpawner: spawn-to-ready median \d+\.\d\d s over 1 spawns .*",
        rf"ours / batchspawner: ratio of medians {RATIO}, median of per-round ratios {RATIO} \(goal <= 1\.1\)",
    )


def test_dask_create_to_first_worker():
    require(peers_missing())
    assert_lines(
        python_smoke("dask_create_to_first_worker.py"),
        rf"ours / LocalCluster: ratio of medians {RATIO}, median of per-round ratios {RATIO} \(goal <= 1\.1\)",
        rf"ours / dask-labextension: ratio of medians {RATIO}, median of per-round ratios {RATIO}",
    )


def test_panel_update():
    # Jest compiles the benchmark with type checks: it fails when the panel's interfaces move on.
    output = run_smoke(
        [str(REPO / "node_modules" / ".bin" / "jest"), "--config", str(BENCH / "jest.config.js")],
        cwd=REPO / "labextension",
        env={"NODE_ENV": "production", "SCIENCELAB_BENCH_SMOKE": "1"},
    )
    assert_lines(
        output,
        r"panel update, 1000 workers, worker table closed: median \d+\.\d\d ms, .* \(goal < 16 ms\)",
        r"panel update, 1000 workers, worker table open \(50 rows\): median \d+\.\d\d ms, .* \(goal < 16 ms\)",
    )


def test_bundle_size():
    require(peers_missing())
    assert_lines(
        python_smoke("bundle_size.py"),
        rf"ratio ours / \(dask-labextension \+ jupyterlab-nvdashboard\): {RATIO}  \(goal <= 1\.0\)",
    )


def test_gpu_tick():
    assert_lines(python_smoke("gpu_tick.py"), r"sampler tick, .*")


def test_gpu_stream():
    require(peers_missing())
    assert_lines(
        python_smoke("gpu_stream.py", "--peer-path", str(NVDASHBOARD_PATH)),
        r"ratio of server CPU at 100 clients \(ours / nvdashboard\): \d\.\d{3}.*",
    )
