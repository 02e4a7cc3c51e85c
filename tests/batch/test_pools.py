"""The test pools themselves: they leave nothing behind, and refuse bind paths that break the chroot.

Stopped with a job running, or orphaned by a test run killed with SIGKILL, a pool leaves no process
(and so no mount). Each lifecycle test starts a pool of its own beside the session's (pools never
share state or ports).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import HERE, claim_state_directory, processes_in_namespace, start_or_skip, wait_until
from .htcondor import HTCondorPool, outermost_paths
from .slurm import SlurmCluster


@pytest.mark.htcondor
def test_htcondor_pool_stopped_with_a_running_job_leaves_no_process_and_no_mount():
    pool = HTCondorPool()
    try:
        start_or_skip(pool.start)
        job_dir = pool.job_directory("sleeper")
        (job_dir / "sleep.sub").write_text(
            f"executable = /bin/sleep\narguments = 300\nlog = {job_dir}/sleep.log\nrequest_memory = 16\nqueue\n"
        )
        pool.tool("condor_submit", str(job_dir / "sleep.sub"))
        wait_until(
            lambda: [job for job in pool.jobs("JobStatus") if job["JobStatus"] == 2],
            60,
            "the job running",
            describe=pool.describe,
        )
        namespace = pool.namespace
        pool.stop()
        # The namespace held the bind mounts of /tmp, the Python and the repository: with its last
        # process gone, they are gone too.
        assert processes_in_namespace(namespace) == []
        assert not (pool.bin_dir / "condor_q").exists()
    finally:
        pool.stop()
        pool.cleanup()


@pytest.mark.slurm
def test_slurm_cluster_stopped_with_a_running_job_leaves_no_process():
    cluster = SlurmCluster()
    try:
        start_or_skip(cluster.start)
        cluster.tool("sbatch", f"--output={cluster.state}/sleep.out", "--wrap=sleep 300")
        wait_until(
            lambda: [job for job in cluster.jobs() if job["state"] == "RUNNING"],
            60,
            "the job running",
            describe=cluster.describe,
        )
        namespace = cluster.namespace
        cluster.stop()
        assert processes_in_namespace(namespace) == []
    finally:
        cluster.stop()
        cluster.cleanup()


@pytest.mark.slurm
def test_a_cluster_whose_test_run_was_killed_is_reaped_by_the_next_start():
    start_or_skip(SlurmCluster.check_installed)
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from tests.batch.slurm import SlurmCluster; "
            "cluster = SlurmCluster().start(); print(cluster.state, cluster.namespace, flush=True); time.sleep(600)",
        ],
        cwd=HERE.parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        state, namespace = owner.stdout.readline().split()
    finally:
        owner.kill()  # as a test run killed with SIGKILL: no teardown
        owner.wait()
    assert processes_in_namespace(namespace), "the killed run's daemons should still be running"
    fresh = claim_state_directory("sciencelab-slurm-")
    shutil.rmtree(fresh)
    assert processes_in_namespace(namespace) == []
    assert not Path(state).exists()


def test_bind_paths_inside_others_are_bound_once():
    paths = [Path("/work/repo/.venv"), Path("/opt/python"), Path("/work/repo"), Path("/opt/python")]
    assert outermost_paths(paths) == [Path("/opt/python"), Path("/work/repo")]


@pytest.mark.parametrize("path", ["/usr", "/usr/lib/python3", "/etc", "/"])
def test_bind_paths_that_would_hide_the_chroot_system_are_refused(path):
    with pytest.raises(ValueError, match=f"cannot use host path {path}: it would hide the chroot's own"):
        HTCondorPool(bind_paths=[Path(path)])


def test_a_python_under_usr_local_may_be_bound():
    python = Path("/usr/local/lib/python3.11")
    assert HTCondorPool(bind_paths=[python]).bind_paths == [python]
