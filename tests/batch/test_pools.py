"""The test pools themselves: stopped with a job running they leave nothing; bad bind paths are refused.

Each lifecycle test starts a pool of its own beside the session's (pools never share state or ports).
"""

from pathlib import Path

import pytest

from . import processes_in_namespace, start_or_skip, wait_until
from .htcondor import HTCondorPool, outermost_paths
from .slurm import SlurmCluster


@pytest.mark.htcondor
def test_htcondor_pool_stopped_with_a_running_job_leaves_no_process_and_no_mount():
    pool = HTCondorPool()
    try:
        start_or_skip(pool.start)
        job_dir = pool.job_directory("sleeper")
        (job_dir / "sleep.sub").write_text(
            f"executable = /bin/sleep\narguments = 300\nlog = {job_dir}/sleep.log\nrequest_memory = 16\nqueue\n")
        pool.tool("condor_submit", str(job_dir / "sleep.sub"))
        wait_until(lambda: [job for job in pool.jobs("JobStatus") if job["JobStatus"] == 2], 60,
                   "the job running", describe=pool.describe)
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
        wait_until(lambda: [job for job in cluster.jobs() if job["state"] == "RUNNING"], 60, "the job running",
                   describe=cluster.describe)
        namespace = cluster.namespace
        cluster.stop()
        assert processes_in_namespace(namespace) == []
    finally:
        cluster.stop()
        cluster.cleanup()


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
